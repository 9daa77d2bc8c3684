//go:build linux

package oci_test

// Namespaces joined by path: a pod's containers join the network, IPC and
// UTS namespaces of its sandbox (the pause container), as containerd's CRI
// plugin writes in their config.json. The "sandbox" here is a process the
// test starts in new namespaces of those three types.

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// holder starts a process in new network, IPC, UTS and PID namespaces
// (PID 1 of its own), its hostname set to name, and returns its pid.
func holder(t *testing.T, name string) int {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare is not installed (util-linux; scripts/setup.sh installs it)")
	}
	cmd := exec.Command("unshare", "--net", "--ipc", "--uts", "--pid", "--fork", "sh", "-c", "hostname "+name+" && exec sleep 600")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// unshare --fork waits for its child, the namespace's PID 1: up once
	// that sh has exec'd sleep (the hostname is set by then).
	var pid int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
		if err != nil || len(strings.Fields(string(b))) != 1 {
			return false
		}
		if pid, err = strconv.Atoi(strings.Fields(string(b))[0]); err != nil {
			return false
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		return err == nil && strings.TrimSpace(string(comm)) == "sleep"
	}, 10*time.Second, 20*time.Millisecond, "the namespace holder did not start")
	return pid
}

func nsOf(t *testing.T, pid int, kind string) string {
	t.Helper()
	l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, kind))
	require.NoError(t, err)
	return l
}

// TestJoinNamespacesByPath: a container given the network, IPC and UTS
// namespaces by path runs in those very namespaces (the same inodes as the
// holder's, the holder's hostname), and keeps its own PID and mount ones.
func TestJoinNamespacesByPath(t *testing.T) {
	r := newRT(t)
	pid := holder(t, "cri16-pod")
	path := func(kind string) string { return fmt.Sprintf("/proc/%d/ns/%s", pid, kind) }
	b := r.bundle([]string{"sh", "-c", "hostname; for n in net ipc uts pid; do readlink /proc/self/ns/$n; done; cat /proc/1/comm"},
		func(s *specs.Spec) {
			// What containerd's CRI plugin writes for a container of a
			// pod with shareProcessNamespace (the hostname lives in the
			// sandbox's UTS namespace).
			s.Hostname = ""
			s.Linux.Namespaces = []specs.LinuxNamespace{
				{Type: specs.PIDNamespace, Path: path("pid")}, {Type: specs.MountNamespace},
				{Type: specs.NetworkNamespace, Path: path("net")},
				{Type: specs.IPCNamespace, Path: path("ipc")},
				{Type: specs.UTSNamespace, Path: path("uts")},
			}
		})
	res := r.run("run", "--bundle", b, "joiner")
	require.Equal(t, 0, res.Code, "%s", res)
	// The holder is PID 1 of the PID namespace the container was born in.
	want := fmt.Sprintf("cri16-pod\n%s\n%s\n%s\n%s\nsleep\n",
		nsOf(t, pid, "net"), nsOf(t, pid, "ipc"), nsOf(t, pid, "uts"), nsOf(t, pid, "pid"))
	assert.Equal(t, want, res.Stdout, "want the holder's hostname and namespaces")
	for _, kind := range []string{"uts", "pid"} {
		assert.NotEqual(t, nsOf(t, os.Getpid(), kind), nsOf(t, pid, kind), "the holder's %s namespace is not ours", kind)
	}
	// The runtime's own thread went back to its PID namespace: the
	// next container is born in a new one, not in the holder's.
	b = r.bundle([]string{"readlink", "/proc/self/ns/pid"}, nil)
	res = r.run("run", "--bundle", b, "after")
	require.Equal(t, 0, res.Code, "%s", res)
	assert.NotEqual(t, nsOf(t, pid, "pid")+"\n", res.Stdout)
}

// TestJoinNamespaceRefused: a mount or user namespace given by path is
// refused in one line (the init cannot enter it), never run in new ones.
func TestJoinNamespaceRefused(t *testing.T) {
	r := newRT(t)
	for _, kind := range []struct {
		t    specs.LinuxNamespaceType
		proc string
	}{{specs.UserNamespace, "user"}, {specs.MountNamespace, "mnt"}} {
		t.Run(kind.proc, func(t *testing.T) {
			b := r.bundle([]string{"true"}, func(s *specs.Spec) {
				ns := s.Linux.Namespaces[:0]
				for _, n := range s.Linux.Namespaces {
					if n.Type != kind.t {
						ns = append(ns, n)
					}
				}
				s.Linux.Namespaces = append(ns, specs.LinuxNamespace{Type: kind.t, Path: "/proc/1/ns/" + kind.proc})
			})
			res := r.run("create", "--bundle", b, "x")
			assert.Equal(t, 125, res.Code, "%s", res)
			assert.Contains(t, res.Stderr, fmt.Sprintf("joining a %s namespace (/proc/1/ns/%s) is not supported", kind.t, kind.proc))
			assert.Equal(t, 1, strings.Count(strings.TrimSpace(res.Stderr), "\n")+1, "one line: %q", res.Stderr)
			entries, _ := os.ReadDir(r.root)
			assert.Empty(t, entries)
		})
	}
}
