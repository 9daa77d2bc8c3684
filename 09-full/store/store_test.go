package store

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/01-uts/spine/proc"
)

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "lib"), filepath.Join(t.TempDir(), "run"))
	require.NoError(t, err)
	return s
}

func newRecord(name string) *Record {
	return &Record{ID: NewID(), Name: name, Created: time.Now(), Spec: &specs.Spec{Version: specs.Version}}
}

func TestCreateGetByIDNamePrefix(t *testing.T) {
	s := open(t)
	r := newRecord("web")
	require.NoError(t, s.Create(r))
	for _, ref := range []string{r.ID, "web", r.ID[:12], r.ID[:3]} {
		got, err := s.Get(ref)
		require.NoError(t, err, ref)
		assert.Equal(t, r.ID, got.ID)
		assert.Equal(t, filepath.Join(s.Dir(r.ID), r.ID+"-json.log"), got.LogPath)
	}
	for _, ref := range []string{"nope", "", "../x", "names", "ffff"} {
		_, err := s.Get(ref)
		assert.ErrorIs(t, err, ErrNotFound, ref)
	}
	st, err := s.ReadState(r.ID)
	require.NoError(t, err)
	assert.Equal(t, Created, st.Status)

	anon := newRecord("")
	require.NoError(t, s.Create(anon))
	assert.Regexp(t, `^[a-z]+_[a-z]+$`, anon.Name)
}

// Two creates of one name, at once: exactly one wins, and the loser
// leaves nothing behind.
func TestNameIsReservedOnce(t *testing.T) {
	s := open(t)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Create(newRecord("db"))
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
			continue
		}
		var inUse *NameInUse
		assert.True(t, errors.As(err, &inUse), err)
		assert.Contains(t, err.Error(), `The container name "/db" is already in use by container`)
	}
	assert.Equal(t, 1, won)
	all, err := s.List()
	require.NoError(t, err)
	assert.Len(t, all, 1)
	assert.Error(t, s.Create(newRecord("bad/name")))
	assert.Error(t, s.Create(newRecord(NewID())), "a name that looks like an id")
}

// (Names that are not hex: "a" is also an id prefix, and Get, as Docker,
// falls back to one.)
func TestRenameAndRemove(t *testing.T) {
	s := open(t)
	a, b := newRecord("web"), newRecord("db")
	require.NoError(t, s.Create(a))
	require.NoError(t, s.Create(b))
	var inUse *NameInUse
	assert.True(t, errors.As(s.Rename(a.ID, "db"), &inUse))
	require.NoError(t, s.Rename(a.ID, "cache"))
	_, err := s.Get("web")
	assert.ErrorIs(t, err, ErrNotFound)
	got, err := s.Get("cache")
	require.NoError(t, err)
	assert.Equal(t, a.ID, got.ID)

	_, err = s.ClearLive(a.ID)
	require.NoError(t, err)
	require.NoError(t, s.Remove(a.ID))
	require.NoError(t, s.Remove(a.ID), "twice is fine")
	_, err = s.Get("cache")
	assert.ErrorIs(t, err, ErrNotFound)
	assert.NoDirExists(t, s.LiveDir(a.ID))
	require.NoError(t, s.Create(newRecord("cache")), "the name is free again")
	_, err = s.Lock(a.ID)
	assert.ErrorIs(t, err, ErrNotFound)
}

// The lock serialises transitions: a second holder waits for the first.
func TestLockSerialises(t *testing.T) {
	s := open(t)
	r := newRecord("x")
	require.NoError(t, s.Create(r))
	var mu sync.Mutex
	inside := 0
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			require.NoError(t, s.Update(r.ID, func(st *State) error {
				mu.Lock()
				inside++
				n := inside
				mu.Unlock()
				assert.Equal(t, 1, n, "two holders at once")
				time.Sleep(2 * time.Millisecond)
				st.RestartCount++
				mu.Lock()
				inside--
				mu.Unlock()
				return nil
			}))
		}()
	}
	wg.Wait()
	st, err := s.ReadState(r.ID)
	require.NoError(t, err)
	assert.Equal(t, 10, st.RestartCount, "no update lost")
}

// View: a running container whose init lives is running; whose init is
// gone with an exit file, exited with that code; with none (its monitor
// died), exited 255 with the error said; from another boot, exited.
func TestViewJudgesLiveness(t *testing.T) {
	s := open(t)
	r := newRecord("v")
	require.NoError(t, s.Create(r))
	sleeper := exec.Command("sleep", "30")
	require.NoError(t, sleeper.Start())
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
	start, err := proc.StartTime(sleeper.Process.Pid)
	require.NoError(t, err)
	me, err := proc.StartTime(os.Getpid())
	require.NoError(t, err)
	running := State{Status: Running, Pid: sleeper.Process.Pid, PidStart: start, BootID: proc.BootID(),
		MonitorPid: os.Getpid(), MonitorStart: me, StartedAt: time.Now()}

	set := func(st State) *State {
		require.NoError(t, s.WriteState(r.ID, &st))
		v, err := s.View(r.ID)
		require.NoError(t, err)
		return v
	}
	v := set(running)
	assert.Equal(t, Running, v.Status)
	assert.Empty(t, v.Error)

	other := running
	other.BootID = "another-boot"
	v = set(other)
	assert.Equal(t, Exited, v.Status)
	assert.Equal(t, ExitUnknown, v.ExitCode)

	deadMonitor := running
	deadMonitor.MonitorStart++
	v = set(deadMonitor)
	assert.Equal(t, Running, v.Status, "the init still runs")
	assert.Equal(t, MonitorDied, v.Error)

	require.NoError(t, sleeper.Process.Kill())
	_ = sleeper.Wait()
	v = set(running)
	assert.Equal(t, Exited, v.Status)
	assert.Equal(t, ExitUnknown, v.ExitCode)

	dir, err := s.ClearLive(r.ID)
	require.NoError(t, err)
	at := time.Now().Add(time.Second)
	require.NoError(t, os.WriteFile(filepath.Join(dir, ExitFile), AppendExit(nil, 137, at), 0o600))
	v = set(running)
	assert.Equal(t, Exited, v.Status)
	assert.Equal(t, 137, v.ExitCode)
	assert.True(t, at.Equal(v.FinishedAt))
	assert.Empty(t, v.Error, "the monitor lives")
}

// The volumes directory is root's only, even when an older berth made it
// 0755: a volume's _data holds what the container put there, a
// setuid-root binary included.
func TestVolumesDirIsPrivate(t *testing.T) {
	data := filepath.Join(t.TempDir(), "lib")
	_, err := Open(data, filepath.Join(t.TempDir(), "run"))
	require.NoError(t, err)
	fi, err := os.Stat(filepath.Join(data, "volumes"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "a fresh data root")

	old := filepath.Join(t.TempDir(), "lib")
	require.NoError(t, os.MkdirAll(filepath.Join(old, "volumes", "0123", "_data"), 0o755))
	require.NoError(t, os.Chmod(filepath.Join(old, "volumes"), 0o755))
	_, err = Open(old, filepath.Join(t.TempDir(), "run"))
	require.NoError(t, err)
	fi, err = os.Stat(filepath.Join(old, "volumes"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "an existing 0755 volumes directory")
}

// A record too big to read back is refused before the name is taken;
// before, it was written, never listed, and its name stayed taken.
func TestCreateRefusesARecordItCannotReadBack(t *testing.T) {
	s := open(t)
	big := newRecord("big")
	big.Spec.Process = &specs.Process{Env: []string{"A=" + strings.Repeat("x", maxFile)}}
	err := s.Create(big)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "more than the 16777216 a record may be")
	assert.NoDirExists(t, s.Dir(big.ID))
	require.NoError(t, s.Create(newRecord("big")), "the name is free")
}

// A name a dead create reserved (killed before it wrote the record) is
// free again once the reservation is a minute old; a younger one is a
// create in progress, and stays taken.
func TestStaleNameReservation(t *testing.T) {
	s := open(t)
	dead := NewID()
	p := s.namePath("web")
	require.NoError(t, os.WriteFile(p, []byte(dead), 0o600))
	var inUse *NameInUse
	require.ErrorAs(t, s.Create(newRecord("web")), &inUse, "a fresh reservation is a create in progress")
	old := time.Now().Add(-2 * time.Minute)
	require.NoError(t, os.Chtimes(p, old, old))
	r := newRecord("web")
	require.NoError(t, s.Create(r), "a minute-old reservation with no record is stale")
	got, err := s.Get("web")
	require.NoError(t, err)
	assert.Equal(t, r.ID, got.ID)

	require.NoError(t, os.Chtimes(p, old, old))
	require.ErrorAs(t, s.Create(newRecord("web")), &inUse, "an old reservation with its record is not stale")
}
