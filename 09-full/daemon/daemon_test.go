//go:build linux

package daemon_test

// Integration tests: bin/berth daemon on a private socket and private
// roots, driven by the real docker CLI (the client these machines have)
// as a user would, and by raw HTTP where the CLI would hide the answer.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
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

type daemonHost struct {
	t           *testing.T
	berth, sock string
	docker      string
	env         []string
	data, state string
	daemon      *testenv.Background
}

// startDaemon imports the busybox tree as the image busybox into a
// private data root and starts berth daemon on a private socket; the
// daemon's environment carries D17_SECRET, which no container may see.
func startDaemon(t *testing.T) *daemonHost {
	t.Helper()
	testenv.RequireRoot(t)
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("no docker CLI on this machine: these tests drive berth daemon with it")
	}
	h := &daemonHost{t: t, berth: testenv.Berth(t), docker: docker, env: testenv.StateEnv(t)}
	for _, kv := range h.env {
		if v, ok := strings.CutPrefix(kv, "BERTH_DATA_ROOT="); ok {
			h.data = v
		}
		if v, ok := strings.CutPrefix(kv, "BERTH_ROOT="); ok {
			h.state = v
		}
	}
	r := testenv.Run(t, h.env, h.berth, "import", "--cmd", "sh", testenv.Rootfs(t), "busybox")
	require.Equal(t, 0, r.Code, "import busybox: %s", r)
	h.sock = filepath.Join(t.TempDir(), "docker.sock")
	h.daemon = testenv.Start(t, append(h.env, "D17_SECRET=s3cret"), h.berth, "daemon", "-H", "unix://"+h.sock)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("unix", h.sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("berth daemon does not answer on %s", h.sock)
		}
	}
	t.Cleanup(h.cleanup)
	return h
}

// cleanup removes every container the test left (berth rm -f), before
// the daemon is stopped (Start's cleanup, registered first, runs last).
func (h *daemonHost) cleanup() {
	entries, _ := os.ReadDir(filepath.Join(h.data, "containers"))
	args := []string{"rm", "-f", "-v"}
	for _, e := range entries {
		if len(e.Name()) == 64 {
			args = append(args, e.Name())
		}
	}
	if len(args) > 3 {
		if r := testenv.Run(h.t, h.env, h.berth, args...); r.Code != 0 {
			h.t.Errorf("cleanup: berth rm -f: %s", r)
		}
	}
}

func (h *daemonHost) dockerRun(args ...string) testenv.Result {
	h.t.Helper()
	return testenv.Run(h.t, []string{"DOCKER_API_VERSION="}, h.docker, append([]string{"-H", "unix://" + h.sock}, args...)...)
}

func (h *daemonHost) dockerIn(stdin string, args ...string) testenv.Result {
	h.t.Helper()
	return testenv.RunInput(h.t, nil, stdin, h.docker, append([]string{"-H", "unix://" + h.sock}, args...)...)
}

// ok runs a docker command that must succeed; its stdout, trimmed.
func (h *daemonHost) ok(args ...string) string {
	h.t.Helper()
	r := h.dockerRun(args...)
	require.Equal(h.t, 0, r.Code, "docker %s: %s", strings.Join(args, " "), r)
	return strings.TrimSpace(r.Stdout)
}

func (h *daemonHost) berthOK(args ...string) string {
	h.t.Helper()
	r := testenv.Run(h.t, h.env, h.berth, args...)
	require.Equal(h.t, 0, r.Code, "berth %s: %s", strings.Join(args, " "), r)
	return strings.TrimSpace(r.Stdout)
}

// call is one raw HTTP request on the socket: its status and body.
func (h *daemonHost) call(method, path, body string) (int, string) {
	h.t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", h.sock)
	}}, Timeout: time.Minute}
	req, err := http.NewRequest(method, "http://berth"+path, strings.NewReader(body))
	require.NoError(h.t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	require.NoError(h.t, err, "%s %s", method, path)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func TestDaemonSocketIsRoots(t *testing.T) {
	h := startDaemon(t)
	fi, err := os.Stat(h.sock)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSocket|0o660, fi.Mode(), "the API is root on the host: only root (and its group) may connect")
}

func TestDaemonRefusesTCP(t *testing.T) {
	testenv.RequireRoot(t)
	r := testenv.Run(t, testenv.StateEnv(t), testenv.Berth(t), "daemon", "-H", "tcp://127.0.0.1:2375")
	assert.Equal(t, 125, r.Code, "%s", r)
	assert.Contains(t, r.Stderr, "TLS")
	assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.Stderr), "\n")+1, "one line: %q", r.Stderr)
}

func TestDockerVersionAndInfo(t *testing.T) {
	h := startDaemon(t)
	assert.Equal(t, "1.44 1.44", h.ok("version", "--format", "{{.Client.APIVersion}} {{.Server.APIVersion}}"),
		"the CLI negotiates down to the server's version")
	assert.Equal(t, "0 1 json-file", h.ok("info", "--format", "{{.Containers}} {{.Images}} {{.LoggingDriver}}"))
	code, body := h.call("HEAD", "/_ping", "")
	assert.Equal(t, 200, code, body)
}

func TestDockerRunForeground(t *testing.T) {
	h := startDaemon(t)
	r := h.dockerRun("run", "--rm", "busybox", "echo", "hi")
	assert.Equal(t, 0, r.Code, "%s", r)
	assert.Equal(t, "hi\n", r.Stdout)
	r = h.dockerRun("run", "--rm", "busybox", "sh", "-c", "echo oops >&2; exit 3")
	assert.Equal(t, 3, r.Code, "%s", r)
	assert.Equal(t, "oops\n", r.Stderr, "stderr comes back on its own stream (frame 2)")
	r = h.dockerIn("hello\n", "run", "-i", "--rm", "busybox", "cat")
	assert.Equal(t, 0, r.Code, "%s", r)
	assert.Equal(t, "hello\n", r.Stdout, "stdin reaches the container, and its end ends cat")
	assert.Equal(t, "", h.ok("ps", "-a", "-q"), "--rm removed them all")
}

func TestDockerRunTerminal(t *testing.T) {
	h := startDaemon(t)
	tm := testenv.StartTerminal(t, nil, 33, 101, h.docker, "-H", "unix://"+h.sock, "run", "-it", "--rm", "busybox", "sh")
	tm.WaitFor("# ")
	tm.Type("stty size; exit 5\n")
	out, code := tm.Wait()
	assert.Contains(t, out, "33 101", "the client's terminal size reaches the container (resize)")
	assert.Equal(t, 5, code, out)
}

func TestDockerDetachedLifecycle(t *testing.T) {
	h := startDaemon(t)
	id := h.ok("run", "-d", "--name", "d17-web", "-l", "tier=web", "busybox", "sh", "-c", "echo out; echo err >&2; exec sleep 300")
	require.Len(t, id, 64)
	var r testenv.Result
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if r = h.dockerRun("logs", "d17-web"); r.Stdout == "out\n" && r.Stderr == "err\n" {
			break
		}
	}
	assert.Equal(t, "out\n", r.Stdout, "%s", r)
	assert.Equal(t, "err\n", r.Stderr, "%s", r)
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT[0-9:.]+Z err\n$`, h.dockerRun("logs", "-t", "--tail", "1", "d17-web").Stderr)
	assert.Equal(t, "d17-web", h.ok("ps", "--filter", "label=tier=web", "--format", "{{.Names}}"))
	assert.Equal(t, "", h.ok("ps", "--filter", "label=tier=db", "--format", "{{.Names}}"))
	assert.Equal(t, "d17-web", h.ok("ps", "--filter", "status=running", "--filter", "name=web", "--format", "{{.Names}}"))
	assert.Equal(t, "running true "+id, h.ok("inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.Id}}", "d17-web"))
	assert.Equal(t, "d17-web", h.ok("stop", "-t", "1", "d17-web"))
	assert.Equal(t, "exited 137", h.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "d17-web"))
	assert.Equal(t, "", h.ok("ps", "-q"))
	assert.Equal(t, id[:12], h.ok("ps", "-a", "-q"))
	h.ok("start", "d17-web")
	assert.Equal(t, "d17-web", h.ok("kill", "d17-web"))
	assert.Equal(t, "137", h.ok("wait", "d17-web"))
	assert.Equal(t, "d17-web", h.ok("rm", "d17-web"))
	assert.Equal(t, "", h.ok("ps", "-a", "-q"))
}

func TestBerthAndDockerShareTheStore(t *testing.T) {
	h := startDaemon(t)
	h.berthOK("run", "-d", "--name", "d17-cli", "busybox", "sleep", "300")
	assert.Equal(t, "d17-cli", h.ok("ps", "--format", "{{.Names}}"), "a container berth made shows in docker ps")
	h.ok("run", "-d", "--name", "d17-dk", "busybox", "sleep", "300")
	assert.Contains(t, h.berthOK("ps", "--format", "{{.Names}}"), "d17-dk", "and one docker made, in berth ps")
	f := "{{.Id}} {{.Config.Hostname}} {{.Config.Cmd}} {{.State.Pid}} {{.HostConfig.NetworkMode}}"
	assert.Equal(t, h.berthOK("inspect", "-f", f, "d17-dk"), h.ok("inspect", "-f", f, "d17-dk"), "docker inspect is berth inspect")
	h.ok("rm", "-f", "d17-cli", "d17-dk")
}

func TestDockerImages(t *testing.T) {
	h := startDaemon(t)
	assert.Equal(t, "busybox:latest", h.ok("images", "--format", "{{.Repository}}:{{.Tag}}"))
	assert.Equal(t, h.berthOK("image", "inspect", "-f", "{{.Id}}", "busybox"), h.ok("image", "inspect", "-f", "{{.Id}}", "busybox"))
	r := h.dockerRun("image", "inspect", "nope")
	assert.Equal(t, 1, r.Code, "%s", r)
	assert.Contains(t, r.Stderr, "No such image: nope")
}

func TestDockerErrors(t *testing.T) {
	h := startDaemon(t)
	r := h.dockerRun("rm", "nope")
	assert.Equal(t, 1, r.Code, "%s", r)
	assert.Equal(t, "Error response from daemon: No such container: nope\n", r.Stderr)
	code, body := h.call("GET", "/v1.44/containers/nope/json", "")
	assert.Equal(t, 404, code)
	assert.Equal(t, `{"message":"No such container: nope"}`, body)
	id := h.ok("run", "-d", "busybox", "sleep", "300")
	r = h.dockerRun("rm", id)
	assert.Equal(t, 1, r.Code, "%s", r)
	assert.Contains(t, r.Stderr, "container is running: stop the container before removing or force remove")
	code, _ = h.call("DELETE", "/containers/"+id, "")
	assert.Equal(t, 409, code)
	r = h.dockerRun("run", "--rm", "d17-no-such-image")
	assert.NotEqual(t, 0, r.Code, "%s", r)
	assert.Contains(t, r.Stderr, "Unable to find image 'd17-no-such-image:latest' locally")
	assert.Contains(t, r.Stderr, "berth daemon cannot pull images yet: run berth pull d17-no-such-image:latest")

	cases := []struct {
		name, method, path, body, want string
		code                           int
	}{
		{"malformed JSON", "POST", "/containers/create", `{"Image":`, `invalid JSON`, 400},
		{"an unknown field", "POST", "/containers/create", `{"Image":"busybox","Bogus":1}`, `unknown field \"Bogus\"`, 400},
		{"two values", "POST", "/containers/create", `{"Image":"busybox"}{}`, `more than one value`, 400},
		{"an unmapped field", "POST", "/containers/create", `{"Image":"busybox","Cmd":["true"],"HostConfig":{"Privileged":true}}`, `HostConfig.Privileged`, 400},
		{"the daemon's environment", "POST", "/containers/create", `{"Image":"busybox","Cmd":["env"],"Env":["D17_SECRET"]}`, `want NAME=VALUE`, 400},
		{"a huge body", "POST", "/containers/create", `{"Image":"busybox","Cmd":["true"],"Env":["A=` + strings.Repeat("x", 2<<20) + `"]}`, `larger than`, 413},
		{"a path outside the API", "GET", "/v1.44/d17/nothing", "", `page not found`, 404},
		{"a version too new", "GET", "/v1.99/version", "", `client version 1.99 is too new. Maximum supported API version is 1.44`, 400},
		{"a version too old", "GET", "/v1.12/version", "", `is too old`, 400},
		{"a bad filter", "GET", `/containers/json?filters={"d17":["x"]}`, "", `invalid filter 'd17'`, 400},
	}
	for _, c := range cases {
		code, body := h.call(c.method, c.path, c.body)
		assert.Equal(t, c.code, code, "%s: %s", c.name, body)
		assert.Contains(t, body, c.want, c.name)
		assert.True(t, strings.HasPrefix(body, `{"message":`), "%s: Docker's error shape: %s", c.name, body)
	}
	assert.Equal(t, id[:12], h.ok("ps", "-q"), "none of it made a container, and the daemon still answers")
}

// TestWaitRightAfterTheExit asks for the exit of a container that has
// just ended: between the init's death and the monitor's exit file, the
// store's view says 255 (exit unknown); wait must answer the real code.
// Before the fix about one wait in 20 said 255 here.
func TestWaitRightAfterTheExit(t *testing.T) {
	h := startDaemon(t)
	for i := range 20 {
		name := fmt.Sprintf("d17-wait%d", i)
		code, body := h.call("POST", "/v1.44/containers/create?name="+name, `{"Image":"busybox","Cmd":["sh","-c","exit 4"],"HostConfig":{"NetworkMode":"none"}}`)
		require.Equal(t, 201, code, body)
		code, body = h.call("POST", "/v1.44/containers/"+name+"/start", "")
		require.Equal(t, 204, code, body)
		code, body = h.call("POST", "/v1.44/containers/"+name+"/wait", "")
		assert.Equal(t, 200, code)
		assert.Equal(t, `{"StatusCode":4}`, body, "run %d", i)
		code, body = h.call("DELETE", "/v1.44/containers/"+name, "")
		require.Equal(t, 204, code, body)
	}
}

// TestParallelRuns runs containers at once from an image not unpacked
// yet: the daemon serves them in one process, so two first unpacks of a
// layer must not share a private directory (before the fix most of them
// failed: "unpack …: remove …/.unpack-…-PID: directory not empty").
func TestParallelRuns(t *testing.T) {
	h := startDaemon(t)
	results := make(chan testenv.Result, 6)
	for i := range 6 {
		go func() {
			results <- h.dockerRun("run", "--rm", "--network", "none", "busybox", "sh", "-c", fmt.Sprintf("echo run%d; exit %d", i, 10+i))
		}()
	}
	codes := map[int]bool{}
	for range 6 {
		r := <-results
		assert.Regexp(t, `^run\d\n$`, r.Stdout, "%s", r)
		codes[r.Code] = true
	}
	assert.Len(t, codes, 6, "six runs, six exit codes (10 to 15): %v", codes)
	assert.Equal(t, "", h.ok("ps", "-a", "-q"))
}

// TestDockerRunMapsHostConfig: what docker run's flags put in Config and
// HostConfig reaches the container (a published port, a bind mount, a
// named volume, env, workdir, user, restart policy, entrypoint). Run in
// the stand-in host's network namespace (make test), as the bridge is.
func TestDockerRunMapsHostConfig(t *testing.T) {
	h := startDaemon(t)
	www := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(www, "index.html"), []byte("hello from d17\n"), 0o644))
	h.ok("run", "-d", "--name", "d17-web", "-p", "127.0.0.1:18017:80", "-v", www+":/www:ro", "-e", "D17=yes", "-w", "/www",
		"-u", "0:0", "--restart", "on-failure:2", "busybox", "httpd", "-f", "-p", "80", "-h", "/www")
	assert.Equal(t, "d17-web 127.0.0.1:18017->80/tcp", h.ok("ps", "--format", "{{.Names}} {{.Ports}}"))
	var body string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://127.0.0.1:18017/"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
	}
	assert.Equal(t, "hello from d17\n", body, "the published port reaches httpd, which serves the bind mount")
	assert.Equal(t, "["+www+":/www:ro] {on-failure 2} /www 0:0",
		h.ok("inspect", "-f", "{{.HostConfig.Binds}} {{.HostConfig.RestartPolicy}} {{.Config.WorkingDir}} {{.Config.User}}", "d17-web"))
	assert.Equal(t, "yes", h.berthOK("exec", "d17-web", "sh", "-c", "echo $D17"), "the env (berth exec: the daemon has no exec yet)")
	h.ok("rm", "-f", "d17-web")
	assert.Equal(t, "kept", h.ok("run", "--rm", "-v", "d17-vol:/data", "busybox", "sh", "-c", "echo kept > /data/f; cat /data/f"))
	h.berthOK("volume", "rm", "d17-vol")
	assert.Equal(t, "via-entrypoint", h.ok("run", "--rm", "--entrypoint", "echo", "busybox", "via-entrypoint"))
}
