//go:build linux

package cgroup

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A Group is one container's cgroup, on either version. The library
// (containerd/cgroups) does the file work; this type only hides which of
// its two packages is in use and adds what both lack for a runtime:
// killing what is left, and numbers in one shape for `stats`.
type Group struct {
	mode Mode
	path string           // "/berth/<id>", relative to each hierarchy's root
	v1   cgroup1.Cgroup   // one directory per v1 hierarchy
	v2   *cgroup2.Manager // one directory in the unified tree
}

// Mode and Path say where the group is.
func (g *Group) Mode() Mode { return g.mode }

func (g *Group) Path() string { return g.path }

// Create makes the group with every limit of res except the PID limit,
// which the init itself writes just before the command runs, through a
// file the parent opened (Step.PreExec: pids.max counts threads, and the
// Go init has several). Whatever it created
// before an error is left behind: Load and Delete remove it.
func Create(mode Mode, path string, res *specs.LinuxResources) (*Group, error) {
	if res == nil {
		res = &specs.LinuxResources{}
	}
	g := &Group{mode: mode, path: path}
	create := g.createV1
	if mode.Unified() {
		create = g.createV2
	}
	// Nothing of berth removes the shared parent (see Delete), but a
	// `make clean` (or an older berth) may, between our mkdir of it and of
	// our group (ENOENT): then just try again.
	var err error
	for try := 0; try < 5; try++ {
		if err = create(res); err == nil || !errors.Is(err, os.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return g, nil
}

func (g *Group) createV1(res *specs.LinuxResources) error {
	r := *res
	r.Pids = nil
	var weight *uint16
	if res.BlockIO != nil && res.BlockIO.Weight != nil {
		// The library writes only blkio.weight (CFQ, gone since 5.0);
		// BFQ's blkio.bfq.weight is written below.
		b := *res.BlockIO
		weight, b.Weight = b.Weight, nil
		r.BlockIO = &b
	}
	cg, err := cgroup1.New(cgroup1.StaticPath(g.path), &r)
	if err != nil {
		return fmt.Errorf("create cgroup %s: %w", g.path, err)
	}
	g.v1 = cg
	if weight != nil {
		dir := filepath.Join(Root, "blkio", g.path)
		if err := writeFirst(dir, strconv.Itoa(int(*weight)), "blkio.weight", "blkio.bfq.weight"); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return errors.New("--blkio-weight: this kernel has neither blkio.weight nor blkio.bfq.weight (weights need the BFQ I/O scheduler with CONFIG_BFQ_GROUP_IOSCHED)")
			}
			return fmt.Errorf("--blkio-weight: %w", err)
		}
	}
	return nil
}

// v2Wanted are the controllers a container's group gets, when the root
// offers them: limits need them enabled in every ancestor's
// cgroup.subtree_control, and stats need them even without limits.
var v2Wanted = []string{"cpu", "cpuset", "io", "memory", "pids"}

func (g *Group) createV2(res *specs.LinuxResources) error {
	var enable []string
	offered := V2Controllers()
	for _, c := range v2Wanted {
		if contains(offered, c) {
			enable = append(enable, "+"+c)
		}
	}
	// Every ancestor must exist and hand the controllers down: the berth
	// parent of /berth/<id>, or each group of a cgroupsPath given.
	var parents []string
	for p := filepath.Dir(g.path); p != "/" && p != "."; p = filepath.Dir(p) {
		parents = append(parents, p)
	}
	dirs := []string{Root}
	for i := len(parents) - 1; i >= 0; i-- {
		dirs = append(dirs, filepath.Join(Root, parents[i]))
	}
	for _, dir := range dirs {
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create %s: %w", dir, err)
		}
		f := filepath.Join(dir, "cgroup.subtree_control")
		if err := writeFile(f, strings.Join(enable, " ")); err != nil {
			return fmt.Errorf("enable controllers %v: %w", enable, err)
		}
	}
	m, err := cgroup2.NewManager(Root, g.path, v2Resources(res))
	if err != nil {
		return fmt.Errorf("create cgroup %s: %w", g.path, err)
	}
	g.v2 = m
	dir := filepath.Join(Root, g.path)
	// What the library's v2 Resources cannot say, written as files.
	if mem := res.Memory; mem != nil && mem.Swap != nil && mem.Limit != nil {
		// v1 limits memory+swap; v2 limits swap alone (runc's conversion).
		v := "max"
		if *mem.Swap > 0 {
			v = strconv.FormatInt(*mem.Swap-*mem.Limit, 10)
		}
		err := writeFile(filepath.Join(dir, "memory.swap.max"), v)
		// Docker's default (swap = 2 x memory) is dropped quietly where
		// the kernel has no swap accounting; an explicit value is not.
		if err != nil && !(errors.Is(err, os.ErrNotExist) && *mem.Swap == 2**mem.Limit) {
			return fmt.Errorf("--memory-swap: %w", err)
		}
	}
	if b := res.BlockIO; b != nil && b.Weight != nil {
		// BFQ takes Docker's 10-1000 as is; io.weight (1-10000) gets
		// runc's linear conversion.
		w := int(*b.Weight)
		if err := writeFirst(dir, strconv.Itoa(w), "io.bfq.weight"); err != nil {
			if err := writeFirst(dir, strconv.Itoa(1+(w-10)*9999/990), "io.weight"); err != nil {
				return errors.New("--blkio-weight: this kernel has neither io.bfq.weight nor io.weight (weights need the BFQ scheduler or io.cost)")
			}
		}
	}
	for k, v := range res.Unified {
		if err := writeFile(filepath.Join(dir, k), v); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("--cgroup-conf %s: no such file in %s", k, dir)
			}
			return fmt.Errorf("--cgroup-conf %s=%s: %w", k, v, err)
		}
	}
	return nil
}

// v2Resources converts the OCI (v1-shaped) resources into the library's
// v2 ones, as runc and crun do.
func v2Resources(res *specs.LinuxResources) *cgroup2.Resources {
	r := &cgroup2.Resources{Devices: res.Devices}
	if cpu := res.CPU; cpu != nil {
		r.CPU = &cgroup2.CPU{Cpus: cpu.Cpus, Mems: cpu.Mems}
		if cpu.Shares != nil {
			w := cgroup2.ConvertCPUSharesToCgroupV2Value(*cpu.Shares)
			r.CPU.Weight = &w
		}
		if cpu.Quota != nil || cpu.Period != nil {
			quota, period := "max", uint64(defaultPeriod)
			if cpu.Quota != nil && *cpu.Quota > 0 {
				quota = strconv.FormatInt(*cpu.Quota, 10)
			}
			if cpu.Period != nil {
				period = *cpu.Period
			}
			r.CPU.Max = cgroup2.CPUMax(quota + " " + strconv.FormatUint(period, 10))
		}
	}
	if mem := res.Memory; mem != nil {
		r.Memory = &cgroup2.Memory{Max: mem.Limit, Low: mem.Reservation}
	}
	if b := res.BlockIO; b != nil {
		r.IO = &cgroup2.IO{}
		for _, d := range b.ThrottleReadBpsDevice {
			r.IO.Max = append(r.IO.Max, cgroup2.Entry{Type: cgroup2.ReadBPS, Major: d.Major, Minor: d.Minor, Rate: d.Rate})
		}
		for _, d := range b.ThrottleWriteBpsDevice {
			r.IO.Max = append(r.IO.Max, cgroup2.Entry{Type: cgroup2.WriteBPS, Major: d.Major, Minor: d.Minor, Rate: d.Rate})
		}
	}
	return r
}

// Load finds an existing group; os.ErrNotExist when it is gone.
func Load(mode Mode, path string) (*Group, error) {
	g := &Group{mode: mode, path: path}
	if mode.Unified() {
		if _, err := os.Stat(filepath.Join(Root, path)); err != nil {
			return nil, err
		}
		m, err := cgroup2.Load(path)
		if err != nil {
			return nil, fmt.Errorf("load cgroup %s: %w", path, err)
		}
		g.v2 = m
		return g, nil
	}
	cg, err := cgroup1.Load(cgroup1.StaticPath(path))
	if errors.Is(err, cgroup1.ErrCgroupDeleted) {
		return nil, fmt.Errorf("cgroup %s: %w", path, os.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("load cgroup %s: %w", path, err)
	}
	g.v1 = cg
	return g, nil
}

// Add moves a process (all its threads) into the group.
func (g *Group) Add(pid int) error {
	var err error
	if g.v2 != nil {
		err = g.v2.AddProc(uint64(pid))
	} else {
		err = g.v1.AddProc(uint64(pid))
	}
	if err != nil {
		return fmt.Errorf("add pid %d to cgroup %s: %w", pid, g.path, err)
	}
	return nil
}

// SetPids writes pids.max.
func (g *Group) SetPids(limit int64) error {
	if err := writeFile(g.PidsMax(), strconv.FormatInt(limit, 10)); err != nil {
		return fmt.Errorf("--pids-limit: %w", err)
	}
	return nil
}

// PidsMax is the path of the group's pids.max.
func (g *Group) PidsMax() string {
	if g.mode.Unified() {
		return filepath.Join(Root, g.path, "pids.max")
	}
	return filepath.Join(Root, "pids", g.path, "pids.max")
}

// Procs lists the processes in the group.
func (g *Group) Procs() ([]int, error) {
	var pids []int
	if g.v2 != nil {
		ps, err := g.v2.Procs(true)
		for _, p := range ps {
			pids = append(pids, int(p))
		}
		return pids, err
	}
	ps, err := g.v1.Processes(cgroup1.Pids, true)
	if err != nil {
		// Without a pids hierarchy, any other will do.
		ps, err = g.v1.Processes(cgroup1.Freezer, true)
	}
	for _, p := range ps {
		pids = append(pids, p.Pid)
	}
	return pids, err
}

// Delete removes the group (it must be empty: see Kill). Gone already is
// fine. It is rmdir(2) per directory, no more: the kernel itself refuses
// to remove a group that still has members (EBUSY), which is the check the
// library's Delete makes by reading every cgroup.procs first, a
// millisecond slower.
//
// The shared parent /berth stays, as Docker's /docker does. Removing it
// when it looked empty raced with every other berth creating a group under
// it at that moment: the parent vanished between their mkdir of it and of
// their group, or while the library copied cpuset.cpus from it ("read
// .../cpuset/berth/cpuset.cpus: no such device"). Retrying on the errors
// such a race yields means guessing them all, in two libraries' worth of
// steps; an empty group costs nothing, and `make clean` or a reboot
// removes it.
func (g *Group) Delete() error {
	for _, d := range Dirs(g.mode, g.path) {
		if err := rmdir(d); err != nil {
			return fmt.Errorf("remove cgroup %s: %w", g.path, err)
		}
	}
	return nil
}

// rmdir removes a cgroup directory; a group whose last task has just
// exited can stay busy for a moment, so EBUSY is retried for a while.
func rmdir(dir string) error {
	delay := time.Millisecond
	for i := 0; ; i++ {
		err := unix.Rmdir(dir)
		switch {
		case err == nil || errors.Is(err, unix.ENOENT):
			return nil
		case !errors.Is(err, unix.EBUSY) || i == 12:
			return fmt.Errorf("rmdir %s: %w", dir, err)
		}
		time.Sleep(delay)
		if delay < 100*time.Millisecond {
			delay *= 2
		}
	}
}

// OOMKills is how many processes of the group the OOM killer killed
// (v1 memory.oom_control, v2 memory.events: oom_kill).
func (g *Group) OOMKills() (uint64, error) {
	f := filepath.Join(Root, "memory", g.path, "memory.oom_control")
	if g.mode.Unified() {
		f = filepath.Join(Root, g.path, "memory.events")
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == "oom_kill" {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, nil
}

// Value reads one file of the group, for --verbose and the chapter.
func (g *Group) Value(controller, file string) (string, error) {
	dir := filepath.Join(Root, controller, g.path)
	if g.mode.Unified() {
		dir = filepath.Join(Root, g.path)
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	return strings.TrimSpace(string(b)), err
}

// writeFirst writes value to the first of files that exists in dir.
func writeFirst(dir, value string, files ...string) error {
	var err error
	for _, f := range files {
		if err = writeFile(filepath.Join(dir, f), value); err == nil || !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return err
}

// writeFile writes an existing cgroup file (never creates one).
func writeFile(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// unlimited turns the kernel's "no limit" values into 0.
func unlimited(v uint64) uint64 {
	if v >= math.MaxInt64/2 {
		return 0
	}
	return v
}
