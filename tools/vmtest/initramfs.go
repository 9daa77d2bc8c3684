package main

// The guest's whole file system is one initramfs: busybox and its applet
// links, the stage binaries, the test binaries with their testdata, the
// busybox rootfs at its default place, the kernel modules, and /init.

import (
	"bufio"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

//go:embed init.sh
var initScript []byte

// preload are the modules /init loads at boot, with their dependencies:
// overlay (07), veth and bridge (04), loop (image files), tun, ext4 (the
// scratch disk), and the nf_tables pieces NAT and port publishing use (04).
var preload = []string{
	"overlay", "veth", "bridge", "loop", "tun", "ext4",
	"nf_tables", "nft_chain_nat", "nft_nat", "nft_masq", "nft_ct", "nft_redir", "nft_fib_inet",
}

// autoload are modules (files or directories) packed in as well, for the
// kernel or /init to load on demand through busybox modprobe (brd with its
// size, every netfilter expression, br_netfilter...).
var autoload = []string{
	"kernel/drivers/block/brd.ko",
	"kernel/net/netfilter", "kernel/net/ipv4/netfilter", "kernel/net/ipv6/netfilter",
	"kernel/net/bridge", "kernel/net/sched",
}

// An image is what goes into one initramfs.
type image struct {
	Kernel      kernel
	BinDir      string // stage binaries
	Test2JSON   string
	TestDir     string            // compiled test binaries
	HelperDir   string            // helper programs
	Helpers     map[string]string // $BERTH_NAME -> package dir
	Tests       []goPackage
	Repo        string
	Rootfs      string // the busybox tree for containers
	TestTimeout string
}

// write builds the initramfs into out and returns its size in bytes.
func (im image) write(out string) (int64, error) {
	f, err := os.Create(out)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	a := newArchive(f)

	bb, err := exec.LookPath("busybox")
	if err != nil {
		return 0, err
	}
	if err := checkStatic(bb); err != nil {
		return 0, fmt.Errorf("%v: install busybox-static", err)
	}
	list, err := exec.Command(bb, "--list-full").Output()
	if err != nil {
		return 0, fmt.Errorf("busybox --list-full: %w", err)
	}
	applets := strings.Fields(string(list))
	var names []string
	for _, ap := range applets {
		names = append(names, path.Base(ap))
	}

	// The host's userland for what the tests call, at the host's paths.
	merged := mergedUsr()
	if merged {
		a.mergeUsr()
	}
	u, err := hostUserland(names, merged)
	if err != nil {
		return 0, err
	}
	for _, g := range sortedKeys(u.Files) {
		a.file(g, u.Files[g])
	}
	for _, g := range sortedKeys(u.Links) {
		a.symlink(g, u.Links[g])
	}
	// The host's compiled locales (C.UTF-8 at least, which scripts set)
	// and terminal descriptions, for the shell of make vm-shell.
	for _, d := range []string{"/usr/lib/locale", "/lib/terminfo", "/usr/share/terminfo"} {
		if isDir(d) {
			a.tree(d, d)
		}
	}
	// busybox-static for every other command, and all of them in one
	// directory that /init alone puts on its PATH.
	a.file("bin/busybox", bb)
	for i, ap := range applets {
		if ap == "bin/busybox" {
			continue
		}
		a.symlink("usr/libexec/vmtest/"+names[i], "/bin/busybox")
		if !u.Names[names[i]] {
			a.symlink(ap, "/bin/busybox")
		}
	}
	a.bytes("init", 0o755, initScript)
	a.chardev("dev/console", 0o600, 5, 1)
	a.chardev("dev/null", 0o666, 1, 3)
	for _, d := range []string{"proc", "sys", "dev", "run", "var/lib/berth", "root"} {
		a.dir(d, 0o755, 0, 0)
	}
	a.dir("tmp", 0o1777, 0, 0)
	a.dir("var/tmp", 0o1777, 0, 0) // as on Debian: skopeo's default for big temporary files
	// The host's users and subordinate id ranges, so a rootless test finds
	// the same user in the guest.
	for _, f := range []string{"etc/passwd", "etc/group", "etc/shadow", "etc/gshadow", "etc/subuid", "etc/subgid", "etc/login.defs", "etc/default/useradd", "etc/mke2fs.conf"} {
		if _, err := os.Stat("/" + f); err == nil {
			a.file(f, "/"+f)
		}
	}
	a.bytes("etc/hosts", 0o644, []byte("127.0.0.1\tlocalhost berth-vm\n::1\tlocalhost ip6-localhost ip6-loopback\n"))
	a.bytes("etc/hostname", 0o644, []byte("berth-vm\n"))
	a.bytes("etc/profile", 0o644, []byte(profile))
	a.bytes("etc/motd", 0o644, []byte(motd))
	// The book's commands start with sudo; in the guest everyone is root.
	a.bytes("usr/bin/sudo", 0o755, []byte(sudo))

	// Modules.
	if err := im.modules(a); err != nil {
		return 0, err
	}

	// berth: bin/ (the stage binaries, as in the repo), the book, the
	// tests, each with its package directory (and testdata) to run in.
	a.tree("berth/bin", im.BinDir)
	a.file("usr/bin/test2json", im.Test2JSON)
	if _, err := os.Stat(filepath.Join(im.Repo, "docs")); err == nil {
		a.tree("berth/docs", filepath.Join(im.Repo, "docs"))
	}
	var tl strings.Builder
	for _, p := range im.Tests {
		name := testBinaryName(p)
		bin := filepath.Join(im.TestDir, name)
		if _, err := os.Stat(bin); err != nil {
			continue // it did not build: reported as a failure on the host
		}
		a.file("berth/tests/"+name, bin)
		a.dir("berth/src/"+p.Dir, 0o755, 0, 0)
		if td := filepath.Join(im.Repo, p.Dir, "testdata"); isDir(td) {
			a.tree("berth/src/"+p.Dir+"/testdata", td)
		}
		fmt.Fprintf(&tl, "%s %s %s\n", name, p.ImportPath, p.Dir)
	}
	a.bytes("berth/tests.list", 0o644, []byte(tl.String()))
	conf := fmt.Sprintf("TEST_TIMEOUT=%s\n", im.TestTimeout)
	for env, dir := range im.Helpers {
		name := path.Base(dir)
		a.file("berth/helpers/"+name, filepath.Join(im.HelperDir, name))
		conf += fmt.Sprintf("export %s=/berth/helpers/%s\n", env, name)
	}
	a.bytes("berth/vmtest.conf", 0o644, []byte(conf))

	// The container root filesystem, where testenv.Rootfs and the
	// stages look by default.
	a.tree("var/lib/berth/busybox", im.Rootfs)

	if err := a.close(); err != nil {
		return 0, err
	}
	return a.n, f.Close()
}

// modules packs the chosen modules, a modules.dep (and alias, symbols,
// builtin) cut down to them, and the load order for /init.
func (im image) modules(a *archive) error {
	dir := im.Kernel.modDir()
	idx, err := readModIndex(dir)
	if err != nil {
		return err
	}
	order, err := idx.loadOrder(preload)
	if err != nil {
		return err
	}
	all, err := idx.loadOrder(append(append([]string{}, preload...), idx.under(autoload)...))
	if err != nil {
		return err
	}
	dest := path.Join("lib/modules", im.Kernel.Release)
	packed := map[string]bool{}
	for _, file := range all {
		a.file(path.Join(dest, file), filepath.Join(dir, file))
		packed[file] = true
	}
	a.bytes("lib/modules/load-order", 0o644, []byte(strings.Join(order, "\n")+"\n"))

	// modprobe's indexes, with only what is packed (so a missing module
	// is "not found", not a failed open).
	for _, idx := range []string{"modules.dep", "modules.alias", "modules.symbols"} {
		b, err := filterIndex(filepath.Join(dir, idx), idx, packed)
		if err != nil {
			return err
		}
		a.bytes(path.Join(dest, idx), 0o644, b)
	}
	for _, idx := range []string{"modules.builtin", "modules.order"} {
		a.file(path.Join(dest, idx), filepath.Join(dir, idx))
	}
	return nil
}

// filterIndex keeps the lines of modules.dep / modules.alias /
// modules.symbols that name a packed module.
func filterIndex(file, kind string, packed map[string]bool) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names := map[string]bool{}
	for p := range packed {
		names[modName(p)] = true
	}
	var b strings.Builder
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		keep := false
		switch kind {
		case "modules.dep":
			mod, _, _ := strings.Cut(line, ":")
			keep = packed[mod]
		default: // "alias NAME MODULE"
			fields := strings.Fields(line)
			keep = len(fields) == 3 && names[strings.ReplaceAll(fields[2], "-", "_")]
		}
		if keep {
			b.WriteString(line + "\n")
		}
	}
	return []byte(b.String()), sc.Err()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// sudo in the guest, as the docs runner has it: everyone is root already,
// so `sudo CMD` runs CMD and `sudo -u USER CMD` runs it as USER (with
// setpriv: there is no PAM here for the real sudo or runuser).
const sudo = `#!/bin/sh
case ${1-} in
-u)
	user=$2
	shift 2
	[ "${1-}" = -- ] && shift
	exec setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups --reset-env -- "$@"
	;;
-*)
	echo "sudo $1: not in the berth VM (you are root already; sudo -u USER works)" >&2
	exit 1
	;;
esac
exec env -- "$@"
`

const profile = `export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
export PS1='berth-vm:\w# '
alias ll='ls -l'
`

const motd = `
berth test VM: Debian's kernel, pure cgroup v2, everything in RAM, no network card.
You are root in /berth: bin/ holds every stage, docs/ the book, and the busybox
rootfs is at /var/lib/berth/busybox, so the chapters' commands run as printed
(sudo CMD just runs CMD; sudo -u USER CMD runs it as USER). Nothing here touches
your machine; 'exit' powers the VM off.

`
