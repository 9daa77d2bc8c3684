//go:build linux

package oci_test

// Kubernetes' node interface (CRI) runs its pods on berth-oci: the test
// starts containerd with its CRI plugin on a private socket, berth-oci as
// the runc shim's binary, a pause image it builds, and a CNI bridge of its
// own, then drives it with crictl as kubelet would: runp, create, start,
// exec, logs, stop, rm, stopp, rmp.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

const (
	criPause  = "docker.io/library/cri16-pause:latest"
	criBridge = "cri16br0"
	criSubnet = "10.216.16.0/24"
)

// pauseSource is the sandbox's process: it holds the pod's namespaces and
// waits for the signal that ends the pod.
const pauseSource = `package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
}
`

// buildPause builds the pause program, static, into a tree of its own.
func buildPause(t *testing.T, dir string) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		if _, err := os.Stat("/usr/local/go/bin/go"); err != nil {
			t.Skip("no Go toolchain to build the pause image with")
		}
		gobin = "/usr/local/go/bin/go"
	}
	src := filepath.Join(dir, "pause-src")
	tree := filepath.Join(dir, "pause-tree")
	require.NoError(t, os.MkdirAll(src, 0o755))
	require.NoError(t, os.MkdirAll(tree, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "main.go"), []byte(pauseSource), 0o644))
	cmd := exec.Command(gobin, "build", "-o", filepath.Join(tree, "pause"), "main.go")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GO111MODULE=off")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "build pause: %s", out)
	return tree
}

// startCRI runs containerd with its CRI plugin: the default runtime is the
// runc shim with berth-oci as its binary and root, the sandbox image the
// test's pause, the CNI network a bridge of the test's.
func startCRI(t *testing.T) (*ctrd, string) {
	t.Helper()
	for _, p := range []string{"containerd", "ctr", "containerd-shim-runc-v2", "crictl"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s is not installed (scripts/setup.sh installs it)", p)
		}
	}
	cniBin := "/usr/lib/cni"
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(cniBin, p)); err != nil {
			t.Skipf("CNI plugin %s is missing (Debian's containernetworking-plugins; scripts/setup.sh installs it)", p)
		}
	}
	dir, err := os.MkdirTemp("", "bcri")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := &ctrd{t: t, dir: dir, sock: filepath.Join(dir, "sock"), ns: "k8s.io"}
	rtRoot := filepath.Join(dir, "rt")
	cniConf := filepath.Join(dir, "cni")
	require.NoError(t, os.MkdirAll(cniConf, 0o755))
	conflist := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"cri16net","plugins":[
 {"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":false,
  "ipam":{"type":"host-local","ranges":[[{"subnet":%q}]],"dataDir":%q}}]}`,
		criBridge, criSubnet, filepath.Join(dir, "ipam"))
	require.NoError(t, os.WriteFile(filepath.Join(cniConf, "10-cri16.conflist"), []byte(conflist), 0o644))
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
[grpc]
  address = %q
[ttrpc]
  address = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  restrict_oom_score_adj = %t
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "berth"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth.options]
        BinaryName = %q
        Root = %q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.sock, c.sock+".ttrpc",
		criPause, !hasCapSysResource(t), binary(t), rtRoot, cniBin, cniConf)
	c.serve(cfg)
	t.Cleanup(func() {
		// The bridge the CNI plugin made, in the stand-in host.
		_ = exec.Command("ip", "link", "del", criBridge).Run()
	})
	for _, img := range []struct{ tree, name, cmd string }{
		{buildPause(t, dir), criPause, "/pause"},
		{testenv.Rootfs(t), ctrImage, "sh"},
	} {
		archive := filepath.Join(dir, "image.tar")
		writeImageArchive(t, img.tree, archive, img.name, img.cmd)
		r := c.ctr("images", "import", archive)
		require.Equal(t, 0, r.Code, "import %s: %s", img.name, r)
	}
	return c, rtRoot
}

// hasCapSysResource says whether the test runs with CAP_SYS_RESOURCE. The
// CRI plugin gives a pod's sandbox an oom_score_adj of -998, and lowering
// it needs that capability: on a machine whose root lacks it, runc's init
// fails as berth-oci's does ("failed to update /proc/self/oom_score_adj:
// Permission denied"), and the plugin's restrict_oom_score_adj (for
// containerd without full privileges) keeps the value no lower than
// containerd's own.
func hasCapSysResource(t *testing.T) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			eff, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			require.NoError(t, err, "CapEff %q", v)
			const capSysResource = 24
			if eff&(1<<capSysResource) == 0 {
				t.Log("no CAP_SYS_RESOURCE here: restrict_oom_score_adj = true")
				return false
			}
			return true
		}
	}
	t.Fatal("no CapEff in /proc/self/status")
	return false
}

// crictl runs crictl against the test's containerd.
func (c *ctrd) crictl(args ...string) testenv.Result {
	c.t.Helper()
	ep := "unix://" + c.sock
	return runFiles(c.t, "crictl", append([]string{"--runtime-endpoint", ep, "--image-endpoint", ep, "--timeout", "60s"}, args...)...)
}

func (c *ctrd) crictlOK(args ...string) string {
	c.t.Helper()
	r := c.crictl(args...)
	require.Equal(c.t, 0, r.Code, "crictl %v: %s", args, r)
	return strings.TrimSpace(r.Stdout)
}

// infoPid is the pid crictl inspect/inspectp reports (containerd's info).
func infoPid(t *testing.T, out string) int {
	t.Helper()
	var v struct {
		Info struct {
			Pid int `json:"pid"`
		} `json:"info"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &v), "%s", out)
	require.NotZero(t, v.Info.Pid, "no pid in %s", out)
	return v.Info.Pid
}

func TestCRI(t *testing.T) {
	testenv.RequireRoot(t)
	c, rtRoot := startCRI(t)
	dir := c.dir
	logs := filepath.Join(dir, "pod-logs")
	require.NoError(t, os.MkdirAll(logs, 0o755))
	// As kubelet writes them for a pod without shareProcessNamespace: the
	// PID namespace mode CONTAINER (1), each container a PID namespace of
	// its own. (The CRI's zero value, POD, has the containers join the
	// sandbox's PID namespace by path: TestJoinNamespacesByPath.)
	pod := filepath.Join(dir, "pod.json")
	require.NoError(t, os.WriteFile(pod, []byte(fmt.Sprintf(`{"metadata":{"name":"cri16-pod","namespace":"default","uid":"cri16-uid","attempt":1},
 "hostname":"cri16-pod","log_directory":%q,"linux":{"security_context":{"namespace_options":{"pid":1}}}}`, logs)), 0o644))
	ctrCfg := filepath.Join(dir, "ctr.json")
	require.NoError(t, os.WriteFile(ctrCfg, []byte(fmt.Sprintf(`{"metadata":{"name":"cri16-ctr"},"image":{"image":%q},
 "command":["sh","-c","echo hello from a pod; trap 'exit 0' TERM; while :; do sleep 0.1; done"],
 "log_path":"cri16-ctr.log","linux":{"security_context":{"namespace_options":{"pid":1}}}}`, ctrImage)), 0o644))

	podID := c.crictlOK("runp", pod)
	defer c.crictl("rmp", "-f", podID)
	pausePid := infoPid(t, c.crictlOK("inspectp", podID))
	id := c.crictlOK("create", podID, ctrCfg, pod)
	defer c.crictl("rm", "-f", id)

	c.crictlOK("start", id)
	// What containerd asked berth-oci for: the container's namespaces,
	// in the config.json of its bundle (the task's, made by start).
	b, err := os.ReadFile(filepath.Join(dir, "state", "io.containerd.runtime.v2.task", "k8s.io", id, "config.json"))
	require.NoError(t, err)
	var spec specs.Spec
	require.NoError(t, json.Unmarshal(b, &spec))
	joined := map[specs.LinuxNamespaceType]string{}
	for _, n := range spec.Linux.Namespaces {
		joined[n.Type] = n.Path
	}
	t.Logf("the container's linux.namespaces: %+v", spec.Linux.Namespaces)
	for _, kind := range []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace} {
		assert.NotEmpty(t, joined[kind], "the container joins the sandbox's %s namespace by path", kind)
	}

	assert.Equal(t, "cri16-pod", c.crictlOK("exec", "-s", id, "hostname"))
	pid := infoPid(t, c.crictlOK("inspect", id))
	for _, kind := range []string{"net", "ipc", "uts"} {
		assert.Equal(t, nsOf(t, pausePid, kind), nsOf(t, pid, kind), "the container shares the pause process's %s namespace", kind)
	}
	assert.NotEqual(t, nsOf(t, pausePid, "pid"), nsOf(t, pid, "pid"), "a PID namespace of its own (the pod does not share one)")
	// The pod's address, on the test's bridge.
	assert.Contains(t, c.crictlOK("exec", "-s", id, "busybox", "ip", "-4", "addr", "show", "eth0"), "inet 10.216.16.")
	require.Eventually(t, func() bool {
		return strings.Contains(c.crictl("logs", id).Stdout, "hello from a pod")
	}, 10*time.Second, 100*time.Millisecond, "crictl logs")

	c.crictlOK("stop", id)
	c.crictlOK("rm", id)
	c.crictlOK("stopp", podID)
	c.crictlOK("rmp", podID)
	assert.Empty(t, c.crictlOK("ps", "-a", "-q"))
	assert.Empty(t, c.crictlOK("pods", "-q"))
	// Nothing of berth-oci's state is left: the runtime's root for
	// containerd's namespace is empty.
	entries, _ := os.ReadDir(filepath.Join(rtRoot, "k8s.io"))
	assert.Empty(t, entries, "left in berth-oci's root")
	_, err = os.Stat(fmt.Sprintf("/proc/%d", pausePid))
	assert.True(t, os.IsNotExist(err), "the pause process is gone")
}
