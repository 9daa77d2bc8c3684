//go:build linux

package cli_test

// Integration tests: bin/berth driven as a user would, as root, with a
// private data root and state root per test (testenv.StateEnv), on the
// busybox tree (--rootfs) or an image imported from it. Each test removes
// what it made and checks that nothing is left: mounts, cgroups, veths,
// nftables rules, leases, state directories, monitors.

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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"berth/04-net/network"
	"berth/06-cgroups/cgroup"
	"berth/internal/testenv"
)

type host struct {
	t                  *testing.T
	bin                string
	env                []string
	data, state, rootf string
}

func newHost(t *testing.T) *host {
	t.Helper()
	testenv.RequireRoot(t)
	env := testenv.StateEnv(t)
	h := &host{t: t, bin: testenv.Berth(t), env: env, rootf: testenv.Rootfs(t)}
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "BERTH_DATA_ROOT="); ok {
			h.data = v
		}
		if v, ok := strings.CutPrefix(kv, "BERTH_ROOT="); ok {
			h.state = v
		}
	}
	t.Cleanup(h.cleanup)
	return h
}

// cleanup removes every container the test left and checks nothing of
// theirs is left on the host.
func (h *host) cleanup() {
	ids := h.ids()
	if len(ids) > 0 {
		r := h.run(append([]string{"rm", "-f", "-v"}, ids...)...)
		if r.Code != 0 {
			h.t.Errorf("cleanup: rm -f: %s", r)
		}
	}
	h.assertNothingLeft(ids)
}

// ids lists the full ids of every container of the store.
func (h *host) ids() []string {
	entries, _ := os.ReadDir(filepath.Join(h.data, "containers"))
	var ids []string
	for _, e := range entries {
		if len(e.Name()) == 64 {
			ids = append(ids, e.Name())
		}
	}
	return ids
}

func (h *host) run(args ...string) testenv.Result {
	h.t.Helper()
	return testenv.Run(h.t, h.env, h.bin, args...)
}

func (h *host) runIn(stdin string, args ...string) testenv.Result {
	h.t.Helper()
	return testenv.RunInput(h.t, h.env, stdin, h.bin, args...)
}

// ok runs a verb that must succeed and returns its stdout, trimmed.
func (h *host) ok(args ...string) string {
	h.t.Helper()
	r := h.run(args...)
	require.Equal(h.t, 0, r.Code, "berth %s: %s", strings.Join(args, " "), r)
	return strings.TrimSpace(r.Stdout)
}

// runD starts a detached container on the busybox tree and returns its id.
func (h *host) runD(args ...string) string {
	h.t.Helper()
	return h.ok(h.runArgs("-d", args...)...)
}

// runArgs puts --rootfs and --network none before the container's own
// flags (a later --network wins).
func (h *host) runArgs(first string, args ...string) []string {
	out := []string{"run", "--rootfs", h.rootf, "--network", "none"}
	if first != "" {
		out = append(out, first)
	}
	return append(out, args...)
}

func (h *host) inspect(ref, format string) string {
	h.t.Helper()
	return h.ok("inspect", "--format", format, ref)
}

// waitFor waits until inspect's format of ref gives want.
func (h *host) waitFor(ref, format, want string, d time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(d)
	var got string
	for time.Now().Before(deadline) {
		r := h.run("inspect", "--format", format, ref)
		got = strings.TrimSpace(r.Stdout)
		if r.Code == 0 && got == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatalf("%s of %s is %q after %v, want %q", format, ref, got, d, want)
}

// waitLog waits until the container's log has s.
func (h *host) waitLog(ref, s string) {
	h.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		r := h.run("logs", ref)
		if strings.Contains(r.Stdout+r.Stderr, s) {
			return
		}
	}
	h.t.Fatalf("the log of %s never had %q: %s", ref, s, h.run("logs", ref))
}

// state reads what the store keeps of a container (the monitor's pid).
func (h *host) stored(id string) (st struct {
	Status     string `json:"status"`
	Pid        int    `json:"pid"`
	MonitorPid int    `json:"monitorPid"`
}) {
	h.t.Helper()
	b, err := os.ReadFile(filepath.Join(h.data, "containers", id, "state.json"))
	require.NoError(h.t, err)
	require.NoError(h.t, json.Unmarshal(b, &st))
	return st
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && !strings.HasPrefix(s[i+1:], " Z")
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if !alive(pid) {
			return
		}
	}
	t.Fatalf("process %d still there after 30 s", pid)
}

// assertNothingLeft checks, for each container id, what its steps made
// on the host: none of it may remain.
func (h *host) assertNothingLeft(ids []string) {
	t := h.t
	t.Helper()
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	mode, cgErr := cgroup.DetectMode()
	links, _ := netlink.LinkList()
	nft, _ := exec.Command("nft", "list", "table", "ip", "berth").CombinedOutput()
	leases, _ := filepath.Glob(filepath.Join(network.Dir(h.state), "leases-*.json"))
	for _, id := range ids {
		assert.NotContains(t, string(mounts), id, "a mount of container %s is left", id[:12])
		if cgErr == nil {
			assert.False(t, cgroup.Exists(mode, "/berth/"+id), "the cgroup of %s is left", id[:12])
		}
		for _, l := range links {
			assert.NotEqual(t, network.VethName(id), l.Attrs().Name, "the veth of %s is left", id[:12])
		}
		assert.NotContains(t, string(nft), id, "an nftables rule of %s is left", id[:12])
		for _, f := range leases {
			b, _ := os.ReadFile(f)
			assert.NotContains(t, string(b), id, "the lease of %s is left", id[:12])
		}
		assert.NoDirExists(t, filepath.Join(h.state, id), "the state of %s is left", id[:12])
		assert.NoDirExists(t, filepath.Join(h.state, ".containers", id), "the live state of %s is left", id[:12])
		assert.NoDirExists(t, filepath.Join(h.data, "containers", id), "the record of %s is left", id[:12])
		assert.NoDirExists(t, filepath.Join(h.data, "layers", "containers", id), "the layer of %s is left", id[:12])
		assert.Empty(t, processesOf(id), "processes of %s are left", id[:12])
	}
}

// processesOf lists the processes whose command line names id (its
// monitor, its helpers).
func processesOf(id string) []string {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []string
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || !strings.Contains(string(b), id) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(d))
		if alive(pid) {
			out = append(out, filepath.Base(d)+" "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

// importBusybox puts the busybox tree in the store as an image named
// busybox (stage 08's import), with a CMD.
func (h *host) importBusybox() {
	h.t.Helper()
	h.ok("import", "--cmd", "sh", h.rootf, "busybox")
}
