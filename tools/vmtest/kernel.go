package main

// The guest kernel is Debian's own (the package linux-image-amd64 points
// to), taken apart with dpkg-deb rather than installed: installing it would
// run initramfs-tools and boot hooks on the host for nothing. The package
// ships no modules.dep, so busybox depmod makes one.

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// debPackages are the Debian packages the harness itself needs.
var debPackages = []string{"qemu-system-x86", "busybox-static"}

// ensurePackages installs what is missing of debPackages with apt-get.
func ensurePackages() error {
	var missing []string
	for _, p := range debPackages {
		out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", p).Output()
		if !strings.HasSuffix(strings.TrimSpace(string(out)), "installed") {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	logf("installing %s", strings.Join(missing, " "))
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s not installed: run sudo apt-get install %s", strings.Join(missing, ", "), strings.Join(missing, " "))
	}
	install := func() error {
		cmd := exec.Command("apt-get", append([]string{"install", "-y", "-q", "--no-install-recommends"}, missing...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		return cmd.Run()
	}
	if err := install(); err != nil {
		if err := run("", "apt-get", "update", "-q"); err != nil {
			return err
		}
		if err := install(); err != nil {
			return fmt.Errorf("apt-get install %s: %w", strings.Join(missing, " "), err)
		}
	}
	return nil
}

// A kernel is an unpacked Debian kernel package in the cache.
type kernel struct {
	Dir     string // the unpacked package
	Release string // uname -r, e.g. 6.1.0-56-amd64
}

func (k kernel) vmlinuz() string { return filepath.Join(k.Dir, "boot", "vmlinuz-"+k.Release) }
func (k kernel) modDir() string  { return filepath.Join(k.Dir, "lib", "modules", k.Release) }

// cacheDir is where the kernel is kept between runs.
func cacheDir() string {
	if d := os.Getenv("BERTH_VM_CACHE"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/cache/berth-vm"
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "berth-vm")
	}
	return filepath.Join(os.TempDir(), "berth-vm-cache")
}

// kernelPackage names the package linux-image-amd64 depends on, e.g.
// linux-image-6.1.0-56-amd64.
func kernelPackage() (string, error) {
	out, err := exec.Command("apt-cache", "depends", "linux-image-amd64").Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache depends linux-image-amd64: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "|"))
		if dep, ok := strings.CutPrefix(line, "Depends: "); ok && strings.HasPrefix(dep, "linux-image-") {
			return strings.Trim(dep, "<>"), nil
		}
	}
	return "", fmt.Errorf("apt-cache depends linux-image-amd64: no linux-image-* dependency in:\n%s", out)
}

// fetchKernel returns the unpacked kernel, downloading and unpacking it into
// the cache the first time (and when the Debian kernel moves on; older ones
// are then removed). A half-done fetch is never taken for a done one: the
// tree is built aside and renamed into place at the end.
func fetchKernel(cache string) (kernel, error) {
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return kernel{}, err
	}
	pkg, err := kernelPackage()
	if err != nil {
		if k, ok := cachedKernel(cache, ""); ok {
			logf("%v; using cached %s", err, k.Dir)
			return k, nil
		}
		return kernel{}, err
	}
	if k, ok := cachedKernel(cache, pkg); ok {
		return k, nil
	}
	logf("fetching %s into %s", pkg, cache)
	tmp, err := os.MkdirTemp(cache, ".fetch-")
	if err != nil {
		return kernel{}, err
	}
	defer os.RemoveAll(tmp)
	if err := run(tmp, "apt-get", "download", "-q", pkg); err != nil {
		// An old index may name a kernel the mirror has dropped.
		if err := run("", "apt-get", "update", "-q"); err != nil {
			return kernel{}, err
		}
		if err := run(tmp, "apt-get", "download", "-q", pkg); err != nil {
			return kernel{}, fmt.Errorf("apt-get download %s: %w", pkg, err)
		}
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, pkg+"_*.deb"))
	if len(debs) != 1 {
		return kernel{}, fmt.Errorf("apt-get download %s: expected one .deb in %s, found %d", pkg, tmp, len(debs))
	}
	root := filepath.Join(tmp, "root")
	if err := run("", "dpkg-deb", "-x", debs[0], root); err != nil {
		return kernel{}, err
	}
	rel, err := releaseOf(root)
	if err != nil {
		return kernel{}, err
	}
	if err := run("", "busybox", "depmod", "-b", root, rel); err != nil {
		return kernel{}, err
	}
	dest := filepath.Join(cache, pkg)
	if err := os.RemoveAll(dest); err != nil {
		return kernel{}, err
	}
	if err := os.Rename(root, dest); err != nil {
		return kernel{}, err
	}
	if err := os.WriteFile(filepath.Join(cache, pkg+".done"), []byte(rel+"\n"), 0o644); err != nil {
		return kernel{}, err
	}
	// Keep one kernel: drop those an earlier linux-image-amd64 pointed to.
	old, _ := filepath.Glob(filepath.Join(cache, "linux-image-*"))
	for _, o := range old {
		if b := filepath.Base(o); b != pkg && b != pkg+".done" {
			os.RemoveAll(o)
		}
	}
	return kernel{Dir: dest, Release: rel}, nil
}

// cachedKernel finds a completely unpacked kernel in the cache: pkg's, or
// with pkg empty, any (the newest by name).
func cachedKernel(cache, pkg string) (kernel, bool) {
	done, _ := filepath.Glob(filepath.Join(cache, "linux-image-*.done"))
	sort.Strings(done)
	for i := len(done) - 1; i >= 0; i-- {
		name := strings.TrimSuffix(filepath.Base(done[i]), ".done")
		if pkg != "" && name != pkg {
			continue
		}
		b, err := os.ReadFile(done[i])
		if err != nil {
			continue
		}
		k := kernel{Dir: filepath.Join(cache, name), Release: strings.TrimSpace(string(b))}
		if _, err := os.Stat(k.vmlinuz()); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(k.modDir(), "modules.dep")); err != nil {
			continue
		}
		return k, true
	}
	return kernel{}, false
}

func releaseOf(root string) (string, error) {
	mods, _ := filepath.Glob(filepath.Join(root, "lib", "modules", "*"))
	if len(mods) != 1 {
		return "", fmt.Errorf("%s: expected one lib/modules/RELEASE, found %d", root, len(mods))
	}
	return filepath.Base(mods[0]), nil
}

// A modIndex is what modules.dep and modules.alias say about a kernel's
// modules, plus the soft dependencies that only the modules themselves
// record (libcrc32c needs a crc32c provider loaded first; busybox depmod
// writes no modules.softdep).
type modIndex struct {
	dir     string
	deps    map[string]modEntry // module name -> file and the files it needs
	aliases map[string][]string // alias -> module names, in file order
}

type modEntry struct {
	File string   // relative to the modules dir, e.g. kernel/net/bridge/bridge.ko
	Deps []string // files, as listed
}

// modName turns kernel/net/bridge/br_netfilter.ko (or .ko.xz) into
// br_netfilter; modprobe treats - and _ alike, so do we.
func modName(file string) string {
	b := path.Base(file)
	if i := strings.Index(b, ".ko"); i >= 0 {
		b = b[:i]
	}
	return strings.ReplaceAll(b, "-", "_")
}

func readModIndex(dir string) (*modIndex, error) {
	m := &modIndex{dir: dir, deps: map[string]modEntry{}, aliases: map[string][]string{}}
	err := eachLine(filepath.Join(dir, "modules.dep"), func(line string) {
		if mod, deps, ok := strings.Cut(line, ":"); ok {
			m.deps[modName(mod)] = modEntry{File: mod, Deps: strings.Fields(deps)}
		}
	})
	if err != nil {
		return nil, err
	}
	err = eachLine(filepath.Join(dir, "modules.alias"), func(line string) {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "alias" {
			m.aliases[f[1]] = append(m.aliases[f[1]], strings.ReplaceAll(f[2], "-", "_"))
		}
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return m, nil
}

func eachLine(file string, fn func(string)) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fn(sc.Text())
	}
	return sc.Err()
}

// resolve turns a module name or alias into a module name; of several
// providers it takes the generic one, which loads on any CPU.
func (m *modIndex) resolve(name string) (string, bool) {
	n := strings.ReplaceAll(name, "-", "_")
	if _, ok := m.deps[n]; ok {
		return n, true
	}
	cands := m.aliases[name]
	for _, c := range cands {
		if strings.HasSuffix(c, "_generic") {
			return c, true
		}
	}
	if len(cands) > 0 {
		return cands[0], true
	}
	return "", false
}

// softPre reads "softdep=pre: a b post: c" from a module's .modinfo.
func (m *modIndex) softPre(file string) []string {
	f, err := elf.Open(filepath.Join(m.dir, file))
	if err != nil {
		return nil
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil
	}
	data, err := sec.Data()
	if err != nil {
		return nil
	}
	var pre []string
	for _, kv := range strings.Split(string(data), "\x00") {
		v, ok := strings.CutPrefix(kv, "softdep=")
		if !ok {
			continue
		}
		in := false
		for _, w := range strings.Fields(v) {
			switch w {
			case "pre:":
				in = true
			case "post:":
				in = false
			default:
				if in {
					pre = append(pre, w)
				}
			}
		}
	}
	return pre
}

// loadOrder lists the files to insmod for the named modules, every
// dependency (hard, and soft "pre:") before the module that needs it, each once.
func (m *modIndex) loadOrder(names []string) ([]string, error) {
	var order []string
	seen := map[string]bool{}
	var visit func(name string, chain []string) error
	visit = func(name string, chain []string) error {
		n, ok := m.resolve(name)
		if !ok {
			return fmt.Errorf("module %s not in modules.dep", name)
		}
		if seen[n] {
			return nil
		}
		for _, c := range chain {
			if c == n {
				return fmt.Errorf("module dependency loop: %s", strings.Join(append(chain, n), " -> "))
			}
		}
		e := m.deps[n]
		for _, s := range m.softPre(e.File) {
			if _, ok := m.resolve(s); !ok {
				continue // a soft dependency this kernel does not have
			}
			if err := visit(s, append(chain, n)); err != nil {
				return err
			}
		}
		for _, d := range e.Deps {
			if err := visit(modName(d), append(chain, n)); err != nil {
				return err
			}
		}
		seen[n] = true
		order = append(order, e.File)
		return nil
	}
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// under lists the modules whose file is, or lies below, one of dirs.
func (m *modIndex) under(dirs []string) []string {
	var names []string
	for name, e := range m.deps {
		for _, d := range dirs {
			if e.File == d || strings.HasPrefix(e.File, strings.TrimSuffix(d, "/")+"/") {
				names = append(names, name)
				break
			}
		}
	}
	sort.Strings(names)
	return names
}

func run(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) || len(out) > 0 {
			return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}
