// Package store keeps berth's containers: a record per container in the
// data root (what it is: spec, name, image, labels, created), the state
// that must survive a reboot beside it (status, exit code, OOM kill,
// times, restart count), a name index, and the live directory each
// running container has in the state root (its monitor's socket and exit
// file). Everything is changed under the container's lock and renamed into
// place; whether a container still runs is judged from its init's pid and
// start time (package proc), never from a lock some berth process holds.
//
//	<data-root>/containers/<id>/config.json   Record, written once (create)
//	<data-root>/containers/<id>/state.json    State
//	<data-root>/containers/<id>/lock          flock, held for a transition only
//	<data-root>/containers/<id>/<id>-json.log the json-file log (and .1 .2 ...)
//	<data-root>/containers/names/<name>       the id (O_EXCL: the reservation)
//	<state-root>/.containers/<id>/            live: attach.sock, exit, monitor.log
package store

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Statuses, as Docker names them.
const (
	Created    = "created"
	Running    = "running"
	Paused     = "paused"
	Restarting = "restarting"
	Removing   = "removing"
	Exited     = "exited"
	Dead       = "dead"
)

// ImageRef is the image a container was made from: as the user named it,
// and its id (sha256:...).
type ImageRef struct {
	Ref string `json:"ref,omitempty"`
	ID  string `json:"id,omitempty"`
}

// A Record is what a container is; it does not change once made (but for
// its name: rename).
type Record struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Created time.Time         `json:"created"`
	Image   ImageRef          `json:"image"`
	Labels  map[string]string `json:"labels,omitempty"`
	// Spec and Settings are the engine's Config: the OCI spec and berth's
	// own settings (network, layers, restart policy...), which this package
	// keeps without reading.
	Spec     *specs.Spec     `json:"spec"`
	Settings json.RawMessage `json:"settings,omitempty"`
	LogPath  string          `json:"logPath"`
}

// State is what must survive the container's processes, and a reboot.
type State struct {
	Status string `json:"status"`
	// The init (and the monitor) as package proc names a process.
	Pid          int    `json:"pid,omitempty"`
	PidStart     uint64 `json:"pidStart,omitempty"`
	BootID       string `json:"bootID,omitempty"`
	MonitorPid   int    `json:"monitorPid,omitempty"`
	MonitorStart uint64 `json:"monitorStart,omitempty"`

	ExitCode   int       `json:"exitCode"`
	OOMKilled  bool      `json:"oomKilled,omitempty"`
	Error      string    `json:"error,omitempty"`
	StartedAt  time.Time `json:"startedAt,omitempty"`
	FinishedAt time.Time `json:"finishedAt,omitempty"`

	RestartCount int `json:"restartCount,omitempty"`
	// RestartDelay is the back-off before the next restart (doubled on
	// each quick failure, as Docker's).
	RestartDelay time.Duration `json:"restartDelay,omitempty"`
	// ManuallyStopped: stop (or kill) ended it; the restart policy rests.
	ManuallyStopped bool `json:"manuallyStopped,omitempty"`
	// Health is what its health checks found (health.go).
	Health *Health `json:"health,omitempty"`
}

// A Store is the containers of one data root and one state root.
type Store struct {
	DataRoot  string
	StateRoot string
}

// Open returns the store, making its directories (0700: records hold
// environments, which hold secrets).
//
// The volumes directory is 0700 too, tightened when it exists already: a
// volume's _data is the container's to fill (its root can leave a
// setuid-root binary there, an image can ship one at the volume's path,
// seeding copies it in), so no user of the host may reach into it. The
// data root itself stays traversable: it holds the shared busybox tree
// that rootless runs of stages 05-09 use, and every directory in it that
// holds a container's data is 0700.
func Open(dataRoot, stateRoot string) (*Store, error) {
	s := &Store{DataRoot: dataRoot, StateRoot: stateRoot}
	for _, d := range []string{filepath.Join(dataRoot, "containers", "names"), filepath.Join(stateRoot, ".containers"), filepath.Join(dataRoot, "volumes")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	if err := tighten(filepath.Join(dataRoot, "volumes")); err != nil {
		return nil, err
	}
	return s, nil
}

// tighten makes the directory dir (not a symlink) 0700 if it is looser.
func tighten(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("stat %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("chmod 0700 %s: %w", dir, err)
	}
	return nil
}

// Dir is the container's directory in the data root.
func (s *Store) Dir(id string) string { return filepath.Join(s.DataRoot, "containers", id) }

// LiveDir is the container's live directory in the state root. The dot
// keeps the directory of them apart from the container ids of stages
// 01-08, whose state directories share the state root (and its IPAM).
func (s *Store) LiveDir(id string) string { return filepath.Join(s.StateRoot, ".containers", id) }

func (s *Store) namePath(name string) string {
	return filepath.Join(s.DataRoot, "containers", "names", name)
}

// NewID returns 64 random hex digits, as Docker's ids.
func NewID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("store: crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b)
}

var (
	namePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	idPattern   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// CheckID refuses anything but a full container id (64 hex digits): an
// id becomes a path (the record's directory, the live and the spine's
// directories), and "../x" would be a path outside.
func CheckID(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("invalid container id %q: want 64 hex digits", id)
	}
	return nil
}

// ErrNotFound: no container by that id or name.
var ErrNotFound = errors.New("no such container")

func (e *NameInUse) Error() string {
	return fmt.Sprintf("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", e.Name, e.ID)
}

// Create records a new container: it reserves the name (or one made up),
// then writes the record and its first state (created). On an error
// nothing of it is left.
func (s *Store) Create(rec *Record) error {
	if !idPattern.MatchString(rec.ID) {
		return fmt.Errorf("invalid container id %q", rec.ID)
	}
	if rec.LogPath == "" {
		rec.LogPath = filepath.Join(s.Dir(rec.ID), rec.ID+"-json.log")
	}
	// What readJSON would refuse to read back is refused now, before the
	// name is taken: a record written but never readable is a container
	// nobody can list, start or remove.
	if b, err := json.MarshalIndent(rec, "", "  "); err != nil {
		return fmt.Errorf("encode the record: %w", err)
	} else if len(b)+1 > maxFile {
		return fmt.Errorf("the container's record would be %d bytes, more than the %d a record may be (its environment, labels?)", len(b)+1, maxFile)
	}
	if rec.Name == "" {
		for i := 0; ; i++ {
			rec.Name = RandomName(i > 0)
			err := s.reserve(rec.Name, rec.ID)
			if err == nil {
				break
			}
			var inUse *NameInUse
			if !errors.As(err, &inUse) || i > 20 {
				return err
			}
		}
	} else {
		if err := ValidName(rec.Name); err != nil {
			return err
		}
		if err := s.reserve(rec.Name, rec.ID); err != nil {
			return err
		}
	}
	dir := s.Dir(rec.ID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		_ = os.Remove(s.namePath(rec.Name))
		return fmt.Errorf("create %s: %w", dir, err)
	}
	fail := func(err error) error {
		_ = os.RemoveAll(dir)
		_ = os.Remove(s.namePath(rec.Name))
		return err
	}
	if err := writeJSON(filepath.Join(dir, "config.json"), rec, true); err != nil {
		return fail(err)
	}
	if err := writeJSON(filepath.Join(dir, "state.json"), &State{Status: Created}, false); err != nil {
		return fail(err)
	}
	return nil
}

// Get finds a container by id, name, or unique id prefix, as Docker does.
func (s *Store) Get(ref string) (*Record, error) {
	if ref == "" || strings.ContainsAny(ref, "/\x00") || ref == "." || ref == ".." || ref == "names" {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, ref)
	}
	if idPattern.MatchString(ref) {
		r, err := s.load(ref)
		if err == nil || errors.Is(err, ErrUnreadable) {
			return r, err
		}
	}
	if id, err := os.ReadFile(s.namePath(ref)); err == nil {
		r, err := s.load(strings.TrimSpace(string(id)))
		if err == nil {
			return r, nil
		}
		if errors.Is(err, ErrUnreadable) {
			return nil, err
		}
	}
	if !regexp.MustCompile(`^[0-9a-f]+$`).MatchString(ref) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, ref)
	}
	ids, err := s.ids()
	if err != nil {
		return nil, err
	}
	var match []string
	for _, id := range ids {
		if strings.HasPrefix(id, ref) {
			match = append(match, id)
		}
	}
	switch len(match) {
	case 0:
		return nil, fmt.Errorf("%w: %s", ErrNotFound, ref)
	case 1:
		return s.load(match[0])
	}
	return nil, fmt.Errorf("multiple IDs found with provided prefix: %s", ref)
}

func (s *Store) ids() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(s.DataRoot, "containers"))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(s.DataRoot, "containers"), err)
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && idPattern.MatchString(e.Name()) {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

func (s *Store) load(id string) (*Record, error) {
	var r Record
	if err := readJSON(filepath.Join(s.Dir(id), "config.json"), &r); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		return nil, &Unreadable{ID: id, Err: err}
	}
	return &r, nil
}

// List returns every container, newest first (as docker ps). A container
// being created or removed at that moment may be missing.
func (s *Store) List() ([]*Record, error) {
	ids, err := s.ids()
	if err != nil {
		return nil, err
	}
	var out []*Record
	for _, id := range ids {
		r, err := s.load(id)
		if err != nil {
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// LockTimeout bounds how long a command waits for another's transition.
var LockTimeout = 2 * time.Minute

// Lock takes the container's lock and returns what drops it. A transition
// (create, start, stop's signal, remove) holds it; nothing holds it while
// it waits for the container to exit.
func (s *Store) Lock(id string) (func(), error) {
	p := filepath.Join(s.Dir(id), "lock")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR|unix.O_NOFOLLOW, 0o600)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", p, err)
	}
	deadline := time.Now().Add(LockTimeout)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", p, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("container %s is busy: another command has held its lock for %v", id[:12], LockTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Removed while we waited: the lock is of a directory that is gone.
	if _, err := os.Stat(filepath.Join(s.Dir(id), "config.json")); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return func() { f.Close() }, nil
}

// ReadState returns the stored state (see View for the state as it is).
func (s *Store) ReadState(id string) (*State, error) {
	var st State
	if err := readJSON(filepath.Join(s.Dir(id), "state.json"), &st); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		return nil, err
	}
	return &st, nil
}

// WriteState replaces the stored state; the caller holds the lock.
func (s *Store) WriteState(id string, st *State) error {
	return writeJSON(filepath.Join(s.Dir(id), "state.json"), st, false)
}

// Update changes the stored state under the lock.
func (s *Store) Update(id string, fn func(*State) error) error {
	unlock, err := s.Lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := s.ReadState(id)
	if err != nil {
		return err
	}
	if err := fn(st); err != nil {
		return err
	}
	return s.WriteState(id, st)
}

// Remove deletes the container's record, state, log, name and live
// directory; the caller holds its lock and has stopped it and removed its
// layer. Gone already is fine.
func (s *Store) Remove(id string) error {
	r, err := s.load(id)
	if err == nil {
		if b, err := os.ReadFile(s.namePath(r.Name)); err == nil && strings.TrimSpace(string(b)) == id {
			if err := os.Remove(s.namePath(r.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("release name %s: %w", r.Name, err)
			}
		}
	}
	if err := os.RemoveAll(s.LiveDir(id)); err != nil {
		return fmt.Errorf("remove %s: %w", s.LiveDir(id), err)
	}
	// config.json first: from then on Get says no such container, while
	// the rest goes.
	if err := os.Remove(filepath.Join(s.Dir(id), "config.json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", s.Dir(id), err)
	}
	if err := os.RemoveAll(s.Dir(id)); err != nil {
		return fmt.Errorf("remove %s: %w", s.Dir(id), err)
	}
	return nil
}
