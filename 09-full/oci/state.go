//go:build linux

package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth/01-uts/spine"
	"berth/01-uts/spine/proc"
	"berth/06-cgroups/cgroup"
)

// The statuses of the runtime spec.
const (
	Created = "created"
	Running = "running"
	Stopped = "stopped"
	Paused  = "paused"
)

// State is what `state` prints: the spec's state, with runc's extra
// fields (rootfs, created, owner).
type State struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Status      string            `json:"status"`
	Pid         int               `json:"pid"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// container is one container as its state directory says it, now.
type container struct {
	id, dir string
	c       *spine.Container
	meta    meta
	pid     int    // 0 once the init is gone
	start   uint64 // its start time
	status  string
}

// load reads the container id's state and works out its status from its
// init (pid and start time), its exec FIFO and its cgroup's freezer.
func load(id string) (*container, error) {
	dir, err := stateDir(id)
	if err != nil {
		return nil, err
	}
	c, _, _, err := spine.ReadState(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("container %s does not exist", id)
	}
	if err != nil {
		return nil, err
	}
	x := &container{id: id, dir: dir, c: c}
	if b, err := readSmall(filepath.Join(dir, metaName)); err == nil {
		_ = json.Unmarshal(b, &x.meta)
	}
	x.pid, x.start = spine.InitOf(dir)
	switch {
	case x.pid == 0 || proc.Zombie(x.pid):
		x.status = Stopped
	case exists(filepath.Join(dir, spine.FifoName)):
		x.status = Created
	default:
		x.status = Running
		if g, err := x.group(); err == nil {
			if frozen, err := g.Frozen(); err == nil && frozen {
				x.status = Paused
			}
		}
	}
	return x, nil
}

// group is the container's cgroup, if it has one of its own.
func (x *container) group() (*cgroup.Group, error) {
	path := x.c.Spec.Linux.CgroupsPath
	if path == "" {
		return nil, errors.New("the container has no cgroup of its own")
	}
	mode, err := cgroup.DetectMode()
	if err != nil {
		return nil, err
	}
	return cgroup.Load(mode, path)
}

func (x *container) state() State {
	s := State{
		OCIVersion: specs.Version, ID: x.id, Status: x.status, Bundle: x.meta.Bundle,
		Rootfs: x.c.Spec.Root.Path, Created: x.meta.Created, Owner: x.meta.Owner,
		Annotations: x.c.Spec.Annotations,
	}
	if x.status != Stopped {
		s.Pid = x.pid
	}
	return s
}

// signal sends sig to the init, or with all to every process of its
// cgroup (a process's pid is checked against the start time read just
// before, through a pidfd).
func (x *container) signal(sig syscall.Signal, all bool) error {
	if !all {
		return signalPid(x.pid, x.start, sig)
	}
	g, err := x.group()
	if err != nil {
		return fmt.Errorf("kill --all: %w", err)
	}
	pids, err := g.Procs()
	if err != nil {
		return err
	}
	for _, pid := range pids {
		start, err := proc.StartTime(pid)
		if err != nil {
			continue // gone
		}
		if err := signalPid(pid, start, sig); err != nil {
			return err
		}
	}
	return nil
}

// waitGone waits until the init has exited (a zombie has: its parent,
// the caller, collects it).
func (x *container) waitGone(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !proc.Alive(x.pid, x.start) || proc.Zombie(x.pid) {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

// remove deletes a stopped container: the steps' cleanups (its cgroup,
// its mounts), then the state directory.
func (x *container) remove() error {
	if err := spine.Cleanup(x.c); err != nil {
		return fmt.Errorf("delete %s: %w", x.id, err)
	}
	return nil
}

// poststart and poststop run the bundle's hooks; a failure is logged, not
// returned: the container has started, or is gone, either way (the
// runtime spec's rule).
func (x *container) poststart() {
	if x.meta.Hooks == nil {
		return
	}
	st := x.state()
	st.Status = Running
	if err := runHooks("poststart", x.meta.Hooks.Poststart, st); err != nil {
		logError(err)
	}
}

func (x *container) poststop() {
	if x.meta.Hooks == nil {
		return
	}
	if err := runHooks("poststop", x.meta.Hooks.Poststop, x.state()); err != nil {
		logError(err)
	}
}

// freeze pauses or resumes every process of the container.
func (x *container) freeze(on bool) error {
	g, err := x.group()
	if err != nil {
		return err
	}
	if on {
		return g.Freeze(context.Background())
	}
	return g.Thaw(context.Background())
}

func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 1<<20))
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
