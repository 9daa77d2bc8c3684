//go:build linux

package guest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"berth/internal/testenv"
)

// inVM skips outside the VM: these tests describe the guest, not the host.
func inVM(t *testing.T) {
	t.Helper()
	if os.Getenv("BERTH_VM") != "1" {
		t.Skip("skipped: checks the vmtest guest; runs inside the VM (make vm-test)")
	}
}

func read(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestPureCgroupV2(t *testing.T) {
	inVM(t)
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		t.Errorf("/sys/fs/cgroup: filesystem magic %#x, want cgroup2 %#x", st.Type, unix.CGROUP2_SUPER_MAGIC)
	}
	if got := read(t, "/proc/self/cgroup"); got != "0::/" {
		t.Errorf("/proc/self/cgroup = %q, want 0::/ (only the v2 hierarchy)", got)
	}
	for _, line := range strings.Split(read(t, "/proc/self/mountinfo"), "\n") {
		_, after, _ := strings.Cut(line, " - ")
		if fs := strings.Fields(after); len(fs) > 0 && fs[0] == "cgroup" {
			t.Errorf("a cgroup v1 hierarchy is mounted: %s", line)
		}
		if f := strings.Fields(line); len(f) > 4 && f[4] == "/sys/fs/cgroup" && !strings.Contains(line, "nsdelegate") {
			t.Errorf("cgroup2 mounted without nsdelegate: %s", line)
		}
	}
}

func TestControllersDelegated(t *testing.T) {
	inVM(t)
	got := strings.Fields(read(t, "/sys/fs/cgroup/cgroup.subtree_control"))
	for _, want := range []string{"cpu", "cpuset", "io", "memory", "pids"} {
		found := false
		for _, g := range got {
			found = found || g == want
		}
		if !found {
			t.Errorf("controller %s not in the root's cgroup.subtree_control %q", want, got)
		}
	}
}

func TestModules(t *testing.T) {
	inVM(t)
	mods := read(t, "/proc/modules")
	for _, m := range []string{"overlay", "veth", "bridge", "nf_tables", "nft_chain_nat"} {
		if !strings.Contains(mods, m+" ") {
			t.Errorf("module %s not loaded", m)
		}
	}
	// One that was packed but not loaded: busybox modprobe finds it through
	// the packed modules.dep. Unloaded again, so later tests see the boot state.
	if r := testenv.Run(t, nil, "modprobe", "br_netfilter"); r.Code != 0 {
		t.Fatalf("modprobe br_netfilter: %s", r)
	}
	if _, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables"); err != nil {
		t.Errorf("br_netfilter loaded but: %v", err)
	}
	if r := testenv.Run(t, nil, "rmmod", "br_netfilter"); r.Code != 0 {
		t.Errorf("rmmod br_netfilter: %s", r)
	}
}

func TestBridgeAndVeth(t *testing.T) {
	inVM(t)
	r := testenv.Run(t, nil, "unshare", "--net", "sh", "-euc",
		"ip link add br0 type bridge; ip link add vt0 type veth; ip link set vt0 master br0; ip -o link show vt0")
	if r.Code != 0 || !strings.Contains(r.Stdout, "master br0") {
		t.Fatalf("veth enslaved to a bridge in a new netns:\n%s", r)
	}
}

func TestLoopbackUp(t *testing.T) {
	inVM(t)
	flags, err := strconv.ParseUint(read(t, "/sys/class/net/lo/flags"), 0, 32)
	if err != nil {
		t.Fatal(err)
	}
	if flags&unix.IFF_UP == 0 {
		t.Errorf("lo is down (flags %#x)", flags)
	}
}

// The initramfs itself cannot be pivot_root'ed away from; /init moves it
// onto an ordinary mount so every stage from 03-mount on can.
func TestPivotRoot(t *testing.T) {
	inVM(t)
	root := testenv.Rootfs(t)
	r := testenv.Run(t, nil, "unshare", "--mount", "sh", "-euc",
		`mount --make-rprivate /; mount --bind "$1" "$1"; cd "$1"; pivot_root . tmp; exec /bin/busybox sh -c 'umount -l /tmp; cat /etc/motd'`,
		"sh", root)
	if r.Code != 0 || r.Stdout != "berth busybox rootfs\n" {
		t.Fatalf("pivot_root into %s:\n%s", root, r)
	}
}

func TestStageBinaries(t *testing.T) {
	inVM(t)
	bins, _ := filepath.Glob(filepath.Join(os.Getenv("BERTH_BIN"), "[0-9][0-9]-*"))
	if len(bins) == 0 {
		t.Fatalf("no stage binaries in BERTH_BIN=%s", os.Getenv("BERTH_BIN"))
	}
	for _, b := range bins {
		if r := testenv.Run(t, nil, b, "--help"); r.Code != 0 {
			t.Errorf("%s --help:\n%s", b, r)
		}
	}
	bin := testenv.Binary(t, "01-uts")
	r := testenv.Run(t, testenv.StateEnv(t), bin, "run", "--hostname", "vmcheck", "hostname")
	if r.Code != 0 || r.Stdout != "vmcheck\n" {
		t.Fatalf("01-uts run --hostname vmcheck hostname:\n%s", r)
	}
}

// The host's tools that the harness packs (with their libraries) run in the
// guest, so tests call the same ip, nft, unshare... there as on the host.
func TestHostTools(t *testing.T) {
	inVM(t)
	for _, tool := range [][]string{
		{"bash", "--version"}, {"ip", "-V"}, {"nft", "--version"}, {"unshare", "--version"},
		{"readlink", "/proc/self/ns/uts", "/proc/self/ns/pid"}, {"ps", "--version"}, {"curl", "--version"},
		{"getpcaps", "1"},
		{"nsenter", "--version"}, {"setpriv", "--version"}, {"slirp4netns", "--version"},
	} {
		p, err := exec.LookPath(tool[0])
		if err != nil {
			continue // the host has none: busybox's or nothing
		}
		if dest, _ := filepath.EvalSymlinks(p); filepath.Base(dest) == "busybox" {
			continue
		}
		if r := testenv.Run(t, nil, p, tool[1:]...); r.Code != 0 {
			t.Errorf("%s:\n%s", strings.Join(tool, " "), r)
		}
	}
	for _, id := range []string{"newuidmap", "newgidmap"} {
		p, err := exec.LookPath(id)
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != 0 || st.Mode&unix.S_ISUID == 0 {
			t.Errorf("%s: uid %d mode %o, want setuid root", p, st.Uid, st.Mode)
		}
		if r := testenv.Run(t, nil, p); !strings.Contains(r.Stdout+r.Stderr, "usage") {
			t.Errorf("%s with no arguments does not print its usage:\n%s", p, r)
		}
	}
}
