//go:build linux

package spine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"berth/01-uts/spine/proc"
	"berth/internal/lockfile"
)

// Every running container has a directory under the state root holding
// state.json (who it is, which steps it ran, its init) and a lock file. A
// foreground runtime holds an exclusive flock on the lock for as long as it
// lives; the kernel drops that lock when the process dies, however it
// dies. A detached container (stage 09) outlives the process that created
// it: its init, recorded by pid and start time, is what keeps it alive. So
// a later run that can take the lock and finds the init gone knows the
// container is dead, and can rebuild the steps from state.json and run
// their cleanups: a SIGKILLed run leaves nothing behind for long.
type stateFile struct {
	Container  *Container `json:"container"`
	Steps      []wireStep `json:"steps"`
	Pid        int        `json:"pid"`                // the container's init on the host
	PidStart   uint64     `json:"pidStart,omitempty"` // its start time (see package proc)
	BootID     string     `json:"bootID,omitempty"`   // the boot it started in
	RuntimePid int        `json:"runtimePid"`         // the berth process that created it
}

type state struct {
	dir  string
	lock *lockfile.Lock
	data stateFile
}

func createState(c *Container) (*state, error) {
	if err := os.MkdirAll(c.State, 0o711); err != nil {
		return nil, fmt.Errorf("create the state root: %w", err)
	}
	dir := c.StateDir()
	// 0711: others may not list it, but may reach a file in it by name; the
	// container's root may be another uid (stage 05) and still needs the
	// files the runtime bind-mounts for it (/etc/hosts of stage 04).
	if err := os.Mkdir(dir, 0o711); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("create the state of container %s: %w", c.ID, err)
	}
	lock, err := lockOwn(dir)
	if errors.Is(err, lockfile.ErrHeld) {
		return nil, fmt.Errorf("container id %q is in use by a running container: pick another --id", c.ID)
	}
	if err != nil {
		return nil, fmt.Errorf("create the state of container %s: %w", c.ID, err)
	}
	wire, err := encodeSteps(c.Steps)
	if err != nil {
		lock.Unlock()
		return nil, err
	}
	st := &state{dir: dir, lock: lock, data: stateFile{Container: c, Steps: wire, RuntimePid: os.Getpid()}}
	if err := st.write(); err != nil {
		st.remove()
		return nil, err
	}
	return st, nil
}

// lockOwn takes the container's lock. A running container holds it and
// has written state.json; without state.json the holder can only be a
// Collect of another run that is looking at this directory for a moment
// (it lets go when it finds no state), so wait for it rather than fail.
func lockOwn(dir string) (*lockfile.Lock, error) {
	for i := 0; ; i++ {
		lock, err := lockfile.TryAcquire(filepath.Join(dir, "lock"), lockfile.Exclusive)
		if !errors.Is(err, lockfile.ErrHeld) || i == 400 {
			return lock, err
		}
		if _, serr := os.Stat(filepath.Join(dir, "state.json")); serr == nil {
			return nil, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (st *state) setPid(pid int) error {
	start, err := proc.StartTime(pid)
	if err != nil {
		return err
	}
	st.data.Pid, st.data.PidStart, st.data.BootID = pid, start, proc.BootID()
	return st.write()
}

func (st *state) write() error {
	b, err := json.MarshalIndent(st.data, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	tmp := filepath.Join(st.dir, "state.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(st.dir, "state.json")); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

// unlock drops the lock and keeps the state directory: for a later
// Collect to finish what this run could not, or for a detached container,
// whose init lives on. Twice is fine.
func (st *state) unlock() { st.lock.Unlock() }

// remove deletes the state directory, then drops the lock.
func (st *state) remove() error {
	defer st.lock.Unlock()
	if err := os.RemoveAll(st.dir); err != nil {
		return fmt.Errorf("remove state dir %s: %w", st.dir, err)
	}
	return nil
}

// ReadState returns the container recorded in dir and its init's pid,
// whether or not its runtime still lives.
func ReadState(dir string) (*Container, []Step, int, error) {
	sf, err := readStateFile(dir)
	if err != nil {
		return nil, nil, 0, err
	}
	if sf.Container == nil {
		return nil, nil, 0, fmt.Errorf("%s/state.json has no container", dir)
	}
	steps, err := decodeSteps(sf.Steps)
	if err != nil {
		return nil, nil, 0, err
	}
	sf.Container.Steps = steps
	sf.Container.log = os.Stderr
	return sf.Container, steps, sf.Pid, nil
}

func readStateFile(dir string) (*stateFile, error) {
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var sf stateFile
	if err := json.Unmarshal(b, &sf); err != nil {
		return nil, fmt.Errorf("decode %s/state.json: %w", dir, err)
	}
	return &sf, nil
}

// InitAlive reports whether the init recorded in the state directory dir
// still runs: the same pid, started at the same time, in this boot. A
// recycled pid, or a reboot, reads as gone.
func InitAlive(dir string) bool {
	sf, err := readStateFile(dir)
	if err != nil || sf.Pid <= 0 {
		return false
	}
	return proc.Same(sf.Pid, sf.PidStart, sf.BootID)
}

// InitPid returns the pid of the init recorded in the state directory dir
// while that init still runs (see InitAlive), else 0.
func InitPid(dir string) int {
	sf, err := readStateFile(dir)
	if err != nil || sf.Pid <= 0 || !proc.Same(sf.Pid, sf.PidStart, sf.BootID) {
		return 0
	}
	return sf.Pid
}

// InitOf returns the init recorded in the state directory dir, by pid
// and start time, while it still runs (a zombie counts), else 0, 0: a
// caller that signals it later checks the start time again (no stranger
// that got the pid in between is signalled).
func InitOf(dir string) (pid int, start uint64) {
	sf, err := readStateFile(dir)
	if err != nil || sf.Pid <= 0 || !proc.Same(sf.Pid, sf.PidStart, sf.BootID) {
		return 0, 0
	}
	return sf.Pid, sf.PidStart
}

// Running reports whether the container of state directory dir is alive:
// its runtime holds the lock, which the kernel drops when the runtime dies
// (internal/lockfile), or it is detached and its init still runs. A
// foreground container whose runtime died is dead, even while its init,
// killed by the parent-death signal, has not quite gone.
func Running(dir string) bool {
	return lockfile.Held(filepath.Join(dir, "lock")) || detachedAlive(dir)
}

func detachedAlive(dir string) bool {
	sf, err := readStateFile(dir)
	return err == nil && sf.Container != nil && sf.Container.Detached && InitAlive(dir)
}

// Live lists the ids of containers that still run (see Running).
func Live(stateRoot string) ([]string, error) {
	entries, err := os.ReadDir(stateRoot)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state root %s: %w", stateRoot, err)
	}
	var ids []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if Running(filepath.Join(stateRoot, e.Name())) {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// Collect cleans up after runtimes that died without cleaning up (SIGKILL,
// a crash, a power cut of /run's tmpfs aside). It is safe to run at any time
// and from many processes at once: the flock decides who cleans what.
func Collect(stateRoot string, verbose bool) {
	entries, err := os.ReadDir(stateRoot)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() {
			collectOne(filepath.Join(stateRoot, e.Name()), verbose)
		}
	}
}

func collectOne(dir string, verbose bool) {
	lock, err := lockfile.TryAcquireExisting(filepath.Join(dir, "lock"), lockfile.Exclusive)
	if err != nil {
		return // its runtime is alive, or it is being created or removed right now
	}
	defer lock.Unlock()
	if detachedAlive(dir) {
		return // a detached container: its init lives on its own
	}
	c, steps, _, err := ReadState(dir)
	if err != nil {
		// Steps of a later stage this binary does not know: leave the
		// directory to a binary that does.
		if verbose {
			fmt.Fprintf(os.Stderr, "berth: not collecting %s: %v\n", dir, err)
		}
		return
	}
	c.Verbose = verbose
	if err := cleanup(c, steps); err != nil {
		fmt.Fprintf(os.Stderr, "berth: collecting dead container %s: %v\n", c.ID, err)
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintf(os.Stderr, "berth: remove %s: %v\n", dir, err)
		return
	}
	if verbose {
		fmt.Fprintf(os.Stderr, "berth: collected %s, left by a runtime that died\n", c.ID)
	}
}
