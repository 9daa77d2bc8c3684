//go:build linux

package cli_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// hostPort is the host side of `berth port NAME PORT` (IP:PORT).
func (h *host) hostPort(name, port string) string {
	h.t.Helper()
	out := h.ok("port", name, port)
	require.Regexp(h.t, `^[0-9.]+:[0-9]+$`, out)
	return strings.Replace(out, "0.0.0.0:", "127.0.0.1:", 1)
}

func (h *host) get(addr string) string {
	h.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if b, err := httpGet(addr); err == nil {
			return b
		}
	}
	h.t.Fatalf("nothing answered on %s", addr)
	return ""
}

// -p PORT: the kernel picks a free host port at create; port, ps and
// inspect show it, and it reaches the container. A range publishes each
// port; a host port already held is refused in one line.
func TestPublishFreePortAndRange(t *testing.T) {
	h := newHost(t)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "index.html"), []byte("picked\n"), 0o644))
	require.NoError(t, os.Chmod(dir, 0o755))
	h.ok("run", "-d", "--rootfs", h.rootf, "--name", "web", "-p", "80", "-p", "127.0.0.1:18190-18192:90-92",
		"-v", dir+":/www:ro", "httpd", "-f", "-p", "80", "-h", "/www")
	addr := h.hostPort("web", "80")
	assert.Equal(t, "picked\n", h.get(addr))
	_, port, _ := strings.Cut(addr, ":")
	assert.Equal(t, fmt.Sprintf("0.0.0.0:%s->80/tcp, 127.0.0.1:18190->90/tcp, 127.0.0.1:18191->91/tcp, 127.0.0.1:18192->92/tcp", port),
		h.ok("ps", "--format", "{{.Ports}}"))
	assert.Equal(t, "127.0.0.1:18191", h.ok("port", "web", "91"))
	assert.Equal(t, fmt.Sprintf(`[{"HostIp":"0.0.0.0","HostPort":"%s"}]`, port), h.inspect("web", `{{json (index .NetworkSettings.Ports "80/tcp")}}`))
	assert.Equal(t, `[{"HostIp":"127.0.0.1","HostPort":"18192"}]`, h.inspect("web", `{{json (index .HostConfig.PortBindings "92/tcp")}}`))

	r := h.run("run", "-d", "--rootfs", h.rootf, "--name", "clash", "-p", "127.0.0.1:18191:91", "sleep", "100")
	assert.NotEqual(t, 0, r.Code)
	assert.Contains(t, r.Stderr, "host port 127.0.0.1:18191/tcp is already in use")
	assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.Stderr), "\n")+1, "one line: %q", r.Stderr)
	h.run("rm", "-f", "clash")

	for _, bad := range []string{"1-3:1-2", "70000", "80/sctp", "9-1:9-1", "1-200:1-200", "::1:80:80"} {
		r := h.run("run", "--rm", "--rootfs", h.rootf, "-p", bad, "true")
		assert.Equal(t, 125, r.Code, "-p %s: %s", bad, r)
	}
}

// -P publishes every port the image EXPOSEs, each to a free host port.
func TestPublishAll(t *testing.T) {
	h := newHost(t)
	h.importBusybox()
	ctx := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM busybox\nEXPOSE 80 7/udp\nRUN mkdir /www && echo exposed >/www/index.html\n"), 0o644))
	h.ok("build", "-t", "exposing", ctx)
	h.ok("run", "-d", "--name", "all", "-P", "exposing", "httpd", "-f", "-p", "80", "-h", "/www")
	out := strings.Split(h.ok("port", "all"), "\n")
	require.Len(t, out, 2, "%v", out)
	assert.Regexp(t, `^7/udp -> 0\.0\.0\.0:[0-9]+$`, out[0])
	assert.Regexp(t, `^80/tcp -> 0\.0\.0\.0:[0-9]+$`, out[1])
	assert.Equal(t, "exposed\n", h.get(h.hostPort("all", "80")))
	h.ok("rm", "-f", "all")
	h.ok("rmi", "exposing")
}

// A UDP echo in the container, reached through a published UDP port.
func TestPublishUDP(t *testing.T) {
	h := newHost(t)
	rootfs := testenv.CopyRootfs(t)
	dst := filepath.Join(rootfs, "bin", "udpecho")
	var build *exec.Cmd
	if p := os.Getenv("BERTH_UDPECHO"); p != "" { // prebuilt: the VM has no go
		build = exec.Command("cp", p, dst)
	} else {
		build = exec.Command("go", "build", "-o", dst, "./09-full/cli/internal/udpecho")
		build.Dir = testenv.RepoRoot()
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
	}
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))
	h.ok("run", "-d", "--rootfs", rootfs, "--name", "echo", "-p", "127.0.0.1::7/udp", "udpecho")
	addr := h.ok("port", "echo", "7/udp")
	conn, err := net.Dial("udp4", addr)
	require.NoError(t, err)
	defer conn.Close()
	buf := make([]byte, 100)
	var got string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && got == ""; {
		_, err := conn.Write([]byte("ping"))
		require.NoError(t, err)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
		if n, err := conn.Read(buf); err == nil {
			got = string(buf[:n])
		}
	}
	assert.Equal(t, "echo ping", got)
}
