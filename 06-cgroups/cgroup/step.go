//go:build linux

package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	units "github.com/docker/go-units"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/01-uts/spine"
)

func init() { spine.Register("cgroup", func() spine.Step { return &Step{} }) }

// Step puts the container in its own group. The limits travel in the
// spec (linux.resources); the group's path is derived from the id, so
// that a later run can remove the group of a runtime that was killed.
//
//	Prepare   create /berth/<id> with its limits (the pids limit waits)
//	SetupCmd  v2: start the init inside it (clone3 CLONE_INTO_CGROUP)
//	Parent    v1: move the init in; --stats starts
//	Child     unshare the cgroup namespace, now rooted at the group
//	PreExec   write pids.max, just before the command runs
//	Cleanup   report an OOM kill, kill what is left, remove the group
type Step struct {
	Stats bool `json:"stats,omitempty"`
	// PidsFd is the child's fd of pids.max, opened by the parent for
	// PreExec (the container cannot reach the cgroupfs itself).
	PidsFd int `json:"pidsFd,omitempty"`

	group *Group
	dir   *os.File // v2: the group's directory, for CLONE_INTO_CGROUP
	pids  *os.File // pids.max, passed to the child
	watch *watcher

	// foreign: Prepare found the group in use; it is never touched.
	foreign bool
}

func (*Step) Name() string { return "cgroup" }

func (s *Step) Prepare(c *spine.Container) error {
	path, err := groupOf(c)
	if err != nil {
		return err
	}
	mode, err := DetectMode()
	if err != nil {
		return err
	}
	if err := CheckUnused(mode, path); err != nil {
		// Not ours: Cleanup (which runs after this error) must not
		// kill what is in it, nor remove it.
		s.foreign = true
		return err
	}
	g, err := Create(mode, path, c.Spec.Linux.Resources)
	if err != nil {
		return err // Cleanup removes what was made
	}
	s.group = g
	c.Logf("cgroup: %s; group %s", mode, strings.Join(Dirs(mode, path), " "))
	for _, line := range s.settings(c.Spec.Linux.Resources) {
		c.Logf("cgroup:   %s", line)
	}
	return nil
}

// SetupCmd, on v2, has the kernel create the init inside the group:
// clone3 with CLONE_INTO_CGROUP and the group directory's fd. No moment
// exists when the container runs outside its limits. (v1 has no such
// flag: Parent moves the init in before releasing it.)
func (s *Step) SetupCmd(c *spine.Container, cmd *exec.Cmd) error {
	if s.group == nil {
		return nil
	}
	if r := c.Spec.Linux.Resources; r != nil && r.Pids != nil && r.Pids.Limit != nil {
		f, err := os.OpenFile(s.group.PidsMax(), os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("--pids-limit: open %s: %w", s.group.PidsMax(), err)
		}
		s.pids = f
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
		s.PidsFd = 2 + len(cmd.ExtraFiles) // ExtraFiles[i] is fd 3+i in the child
	}
	if !s.group.Mode().Unified() {
		return nil
	}
	dir := filepath.Join(Root, s.group.Path())
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	s.dir = os.NewFile(uintptr(fd), dir)
	cmd.SysProcAttr.UseCgroupFD = true
	cmd.SysProcAttr.CgroupFD = fd
	c.Logf("cgroup: the init starts inside %s (clone3 CLONE_INTO_CGROUP)", dir)
	return nil
}

// Parent runs while the child waits at the sync point, before it has run
// any of the container's code.
func (s *Step) Parent(c *spine.Container, pid int) error {
	if s.dir != nil {
		s.dir.Close()
		s.dir = nil
	}
	if s.pids != nil { // the child has its own copy now
		s.pids.Close()
		s.pids = nil
	}
	g := s.group
	if !g.Mode().Unified() {
		if err := g.Add(pid); err != nil {
			return err
		}
		c.Logf("cgroup: moved pid %d into %s (cgroup.procs of each hierarchy)", pid, g.Path())
	}
	if c.Verbose {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid)); err == nil {
			c.Logf("cgroup: /proc/%d/cgroup, seen from the host:", pid)
			for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				c.Logf("cgroup:   %s", line)
			}
		}
	}
	if s.Stats {
		s.watch = startWatch(c.ID, g)
	}
	return nil
}

// PreExec writes pids.max from inside, through the file the parent opened
// for it (PidsFd), as the last thing before the command runs. pids.max
// counts threads, and berth's init is a Go program with several: set
// earlier, a small limit would stop the Go runtime itself from starting a
// thread while it sets the container up. After execve only the command's
// own tasks count; with --init the init stays, and Configure made sure the
// limit leaves the command room beyond its threads.
func (s *Step) PreExec(c *spine.Container) error {
	if s.PidsFd == 0 {
		return nil
	}
	f := os.NewFile(uintptr(s.PidsFd), "pids.max")
	defer f.Close()
	limit := strconv.FormatInt(*c.Spec.Linux.Resources.Pids.Limit, 10)
	if _, err := f.WriteString(limit); err != nil {
		return fmt.Errorf("--pids-limit: write pids.max: %w", err)
	}
	c.Logf("cgroup:   pids.max = %s, written just before the command runs", limit)
	return nil
}

// Child gives the container a cgroup namespace rooted at its group, so
// /proc/self/cgroup says "/" and the host's layout stays hidden. The
// namespace's root is the creator's cgroup at creation time; the one the
// spine creates at clone is rooted where the runtime was (and on v1 the
// init was moved only afterwards), so the child makes a fresh one now,
// from inside its group. unshare(CLONE_NEWCGROUP) is allowed to a
// multithreaded process: the namespace belongs to the calling thread,
// which is the locked main thread that goes on to execve.
func (s *Step) Child(c *spine.Container) error {
	if path, ok := c.Namespace(specs.CgroupNamespace); !ok || path != "" {
		return nil
	}
	if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
		return fmt.Errorf("unshare(CLONE_NEWCGROUP): %w", err)
	}
	return nil
}

// Cleanup says whether the OOM killer struck, kills whatever is left
// in the group and removes it. Run by a later run for a runtime that was
// killed, it works from the id alone.
func (s *Step) Cleanup(c *spine.Container) error {
	if s.dir != nil {
		s.dir.Close()
		s.dir = nil
	}
	s.watch.stop()
	if s.foreign {
		return nil
	}
	if spine.ValidID(c.ID) != nil {
		return nil // never derive a path from a bad id
	}
	mode, err := DetectMode()
	if err != nil {
		return err
	}
	path, err := groupOf(c)
	if err != nil {
		return nil // never derive a path from a bad spec
	}
	g, err := Load(mode, path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if c.Pid != 0 { // this run started it (not a collection)
		if n, err := g.OOMKills(); err == nil && n > 0 {
			limit := "its memory limit"
			if r := c.Spec.Linux.Resources; r != nil && r.Memory != nil && r.Memory.Limit != nil {
				limit += " of " + units.BytesSize(float64(*r.Memory.Limit))
			}
			fmt.Fprintf(os.Stderr, "%s: OOMKilled: the kernel killed %d process(es) of container %s at %s\n", c.Prog, n, c.ID, limit)
		}
	}
	if err := g.Kill(context.Background()); err != nil {
		return err
	}
	if err := g.Delete(); err != nil {
		return err
	}
	c.Logf("cgroup: removed %s", g.Path())
	return nil
}

// groupOf is the container's group: the spec's linux.cgroupsPath as given
// (stage 09 and OCI bundles set it), or /berth/<id> (this stage's
// Configure sets that). Only the cgroupfs form is understood: an absolute
// path, no "..", no systemd "slice:prefix:name".
func groupOf(c *spine.Container) (string, error) {
	p := c.Spec.Linux.CgroupsPath
	if p == "" {
		return GroupPath(c.ID), nil
	}
	if strings.Contains(p, ":") {
		return "", fmt.Errorf("cgroupsPath %q: the systemd form slice:prefix:name is not supported; give a path such as /berth/%s", p, c.ID)
	}
	if !strings.HasPrefix(p, "/") || filepath.Clean(p) != p || p == "/" {
		return "", fmt.Errorf("cgroupsPath %q: want an absolute, clean path below the cgroup root, such as /berth/%s", p, c.ID)
	}
	return p, nil
}

// settings reads back, for --verbose, the files that res set.
func (s *Step) settings(res *specs.LinuxResources) []string {
	if res == nil {
		return nil
	}
	g := s.group
	type file struct{ ctrl, name string }
	var files []file
	add := func(ctrl string, names ...string) {
		for _, n := range names {
			files = append(files, file{ctrl, n})
		}
	}
	v2 := g.Mode().Unified()
	if res.Memory != nil {
		if v2 {
			add("", "memory.max", "memory.swap.max", "memory.low")
		} else {
			add("memory", "memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.swappiness", "memory.oom_control")
		}
	}
	if res.CPU != nil {
		if v2 {
			add("", "cpu.weight", "cpu.max", "cpuset.cpus", "cpuset.mems")
		} else {
			add("cpu", "cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us")
			add("cpuset", "cpuset.cpus", "cpuset.mems")
		}
	}
	if res.BlockIO != nil {
		if v2 {
			add("", "io.bfq.weight", "io.weight", "io.max")
		} else {
			add("blkio", "blkio.weight", "blkio.bfq.weight", "blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device")
		}
	}
	if !v2 {
		add("devices", "devices.list")
	}
	keys := make([]string, 0, len(res.Unified))
	for k := range res.Unified {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	add("", keys...)
	var out []string
	for _, f := range files {
		v, err := g.Value(f.ctrl, f.name)
		if err != nil || v == "" {
			continue
		}
		v = strings.ReplaceAll(v, "\n", "; ")
		out = append(out, f.name+" = "+v)
	}
	if v2 && len(res.Devices) > 0 {
		out = append(out, fmt.Sprintf("devices: eBPF program attached (%d rules)", len(res.Devices)))
	}
	return out
}

// A watcher prints a stats row every second to stderr (--stats), and a
// last one when the container ends.
type watcher struct {
	once sync.Once
	quit chan struct{}
	done chan struct{}
}

func startWatch(id string, g *Group) *watcher {
	w := &watcher{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := NewTable(os.Stderr)
		t.Header()
		prev, err := g.Sample()
		if err != nil {
			return
		}
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for last := false; !last; {
			select {
			case <-tick.C:
			case <-w.quit:
				last = true
			}
			cur, err := g.Sample()
			if err != nil {
				return
			}
			cur.ID = id
			cur.Since(prev)
			t.Row(cur)
			prev = cur
		}
	}()
	return w
}

func (w *watcher) stop() {
	if w == nil {
		return
	}
	w.once.Do(func() { close(w.quit) })
	<-w.done
}
