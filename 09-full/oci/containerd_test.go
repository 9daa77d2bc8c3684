//go:build linux

package oci_test

// containerd drives berth-oci as it drives runc: ctr run --runc-binary.
// The test starts Debian's containerd on a private socket, root and state
// (its own config.toml, the CRI plugin off), imports a busybox image from
// an OCI archive it writes, and runs each check with berth-oci and with
// runc, printing both columns.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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

const ctrImage = "docker.io/library/berth-oci-busybox:latest"

type ctrd struct {
	t    *testing.T
	dir  string
	sock string
	ns   string
}

// startContainerd runs containerd on a private socket in dir.
func startContainerd(t *testing.T) *ctrd {
	t.Helper()
	for _, p := range []string{"containerd", "ctr", "containerd-shim-runc-v2"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s is not installed (Debian's containerd; scripts/setup.sh installs it)", p)
		}
	}
	// Short: a unix socket's path is at most 107 bytes.
	dir, err := os.MkdirTemp("", "boci")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := &ctrd{t: t, dir: dir, sock: filepath.Join(dir, "sock")}
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.sock, c.sock+".ttrpc")
	c.serve(cfg)
	archive := filepath.Join(dir, "busybox.tar")
	writeOCIArchive(t, testenv.Rootfs(t), archive)
	r := c.ctr("images", "import", archive)
	require.Equal(t, 0, r.Code, "import: %s", r)
	return c
}

// serve writes cfg as c.dir's config.toml and runs containerd with it
// until the test ends.
func (c *ctrd) serve(cfg string) {
	t, dir := c.t, c.dir
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o600))
	log, err := os.Create(filepath.Join(dir, "containerd.log"))
	require.NoError(t, err)
	cmd := exec.Command("containerd", "--config", filepath.Join(dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("containerd's log:\n%s", b)
		}
	})
	require.Eventually(t, func() bool { return c.ctr("version").Code == 0 }, 20*time.Second, 50*time.Millisecond, "containerd did not come up")
}

func (c *ctrd) ctr(args ...string) testenv.Result {
	c.t.Helper()
	return runFiles(c.t, "ctr", append([]string{"-a", c.sock, "-n", c.namespace()}, args...)...)
}

// namespace is containerd's namespace the test works in: its own, or
// k8s.io, the CRI plugin's.
func (c *ctrd) namespace() string {
	if c.ns != "" {
		return c.ns
	}
	return "boci"
}

// writeOCIArchive writes an OCI image layout of one layer (the tree as a
// tar) as an archive, named ctrImage.
func writeOCIArchive(t *testing.T, tree, path string) {
	t.Helper()
	writeImageArchive(t, tree, path, ctrImage, "sh")
}

// writeImageArchive writes tree as the one layer of an image named name
// whose command is cmd, as an OCI image layout archive.
func writeImageArchive(t *testing.T, tree, path, name, cmd string) {
	t.Helper()
	layer, err := exec.Command("tar", "-C", tree, "-cf", "-", ".").Output()
	require.NoError(t, err)
	blobs := map[string][]byte{}
	add := func(b []byte) (string, int) {
		sum := sha256.Sum256(b)
		d := hex.EncodeToString(sum[:])
		blobs[d] = b
		return "sha256:" + d, len(b)
	}
	ld, ls := add(layer)
	cfg := fmt.Sprintf(`{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":[%q]},"rootfs":{"type":"layers","diff_ids":[%q]}}`, cmd, ld)
	cd, cs := add([]byte(cfg))
	man := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`, cd, cs, ld, ls)
	md, ms := add([]byte(man))
	index := fmt.Sprintf(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":%d,"annotations":{"io.containerd.image.name":%q,"org.opencontainers.image.ref.name":"latest"}}]}`, md, ms, name)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	file := func(name string, b []byte) {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}))
		_, err := tw.Write(b)
		require.NoError(t, err)
	}
	file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	file("index.json", []byte(index))
	for d, b := range blobs {
		file("blobs/sha256/"+d, b)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
}

// TestContainerd runs containerd's checks with berth-oci and with runc
// and prints the table; berth-oci must pass each.
func TestContainerd(t *testing.T) {
	testenv.RequireRoot(t)
	c := startContainerd(t)
	runtimes := []struct{ name, bin string }{{"berth-oci", binary(t)}}
	if p, err := exec.LookPath("runc"); err == nil {
		runtimes = append(runtimes, struct{ name, bin string }{"runc", p})
	} else {
		t.Log("runc is not installed: its column is left out")
	}
	type check struct {
		name string
		fn   func(rt []string, id string) error
	}
	img := ctrImage
	checks := []check{
		{"output and exit code 42", func(rt []string, id string) error {
			r := c.ctr(append(append([]string{"run", "--rm"}, rt...), img, id, "sh", "-c", "echo hello; exit 42")...)
			return expect(r, 42, "hello\n")
		}},
		{"--env", func(rt []string, id string) error {
			r := c.ctr(append(append([]string{"run", "--rm", "--env", "FOO=bar"}, rt...), img, id, "sh", "-c", "echo $FOO")...)
			return expect(r, 0, "bar\n")
		}},
		{"--memory-limit 16 MiB, OOM: 137", func(rt []string, id string) error {
			r := c.ctr(append(append([]string{"run", "--rm", "--memory-limit", "16777216"}, rt...), img, id, "sh", "-c", "tail /dev/zero")...)
			return expect(r, 137, "")
		}},
		{"run -d, exec, pause/resume, SIGTERM trapped (7), delete", func(rt []string, id string) error {
			r := c.ctr(append(append([]string{"run", "-d"}, rt...), img, id, "sh", "-c", `trap "exit 7" TERM; while :; do sleep 0.05; done`)...)
			if r.Code != 0 {
				return fmt.Errorf("run -d: %s", r)
			}
			defer c.ctr("task", "delete", "--force", id)
			defer c.ctr("containers", "rm", id)
			if err := taskStatus(c, id, "RUNNING"); err != nil {
				return err
			}
			if err := expect(c.ctr("task", "exec", "--exec-id", "e1", id, "sh", "-c", "echo in; exit 5"), 5, "in\n"); err != nil {
				return fmt.Errorf("exec: %w", err)
			}
			if r := c.ctr("task", "pause", id); r.Code != 0 {
				return fmt.Errorf("pause: %s", r)
			}
			if err := taskStatus(c, id, "PAUSED"); err != nil {
				return err
			}
			if r := c.ctr("task", "resume", id); r.Code != 0 {
				return fmt.Errorf("resume: %s", r)
			}
			if r := c.ctr("task", "kill", id); r.Code != 0 {
				return fmt.Errorf("kill: %s", r)
			}
			if err := taskStatus(c, id, "STOPPED"); err != nil {
				return err
			}
			r = c.ctr("task", "delete", id)
			if r.Code != 0 || !strings.Contains(r.Stderr, "exit code 7") {
				return fmt.Errorf("task delete: want exit code 7 recorded: %s", r)
			}
			if r := c.ctr("containers", "rm", id); r.Code != 0 {
				return fmt.Errorf("containers rm: %s", r)
			}
			if r := c.ctr("containers", "ls", "-q"); strings.TrimSpace(r.Stdout) != "" {
				return fmt.Errorf("left in ctr c ls: %q", r.Stdout)
			}
			return nil
		}},
	}
	results := map[string][]string{}
	for _, rt := range runtimes {
		root := filepath.Join(c.dir, "rt-"+rt.name)
		flags := []string{"--runc-binary", rt.bin, "--runc-root", root}
		for i, ch := range checks {
			id := fmt.Sprintf("%s-%d", strings.ReplaceAll(rt.name, "-", ""), i)
			err := ch.fn(flags, id)
			mark := "ok"
			if err != nil {
				mark = "FAIL"
				if rt.name == "berth-oci" {
					t.Errorf("%s with %s: %v", ch.name, rt.name, err)
				} else {
					t.Logf("%s with %s: %v", ch.name, rt.name, err)
				}
			}
			results[ch.name] = append(results[ch.name], mark)
		}
		// Nothing left in the runtime's root once every task is deleted.
		entries, _ := os.ReadDir(filepath.Join(root, "boci"))
		assert.Empty(t, entries, "%s: left in its root", rt.name)
	}
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "%-58s", "containerd (ctr) check")
	for _, rt := range runtimes {
		fmt.Fprintf(&tbl, " %-10s", rt.name)
	}
	tbl.WriteString("\n")
	for _, ch := range checks {
		fmt.Fprintf(&tbl, "%-58s", ch.name)
		for _, m := range results[ch.name] {
			fmt.Fprintf(&tbl, " %-10s", m)
		}
		tbl.WriteString("\n")
	}
	t.Logf("\n%s", tbl.String())
}

func expect(r testenv.Result, code int, stdout string) error {
	if r.Code != code || (stdout != "" && r.Stdout != stdout) {
		return fmt.Errorf("want exit %d and %q: %s", code, stdout, r)
	}
	return nil
}

// taskStatus waits up to 10 s for ctr task ls to show the task in status.
func taskStatus(c *ctrd, id, status string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var last string
	for ctx.Err() == nil {
		r := c.ctr("task", "ls")
		for _, line := range strings.Split(r.Stdout, "\n") {
			f := strings.Fields(line)
			if len(f) == 3 && f[0] == id {
				last = f[2]
				if last == status {
					return nil
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("task %s: want %s, last seen %q", id, status, last)
}
