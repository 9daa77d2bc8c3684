//go:build linux

package lockfile

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Two opens of one file exclude each other, in one process as across
// processes; shared holders share, and keep an exclusive one out.
func TestModes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	ex, err := TryAcquire(p, Exclusive)
	require.NoError(t, err)
	assert.True(t, Held(p))
	_, err = TryAcquire(p, Shared)
	assert.ErrorIs(t, err, ErrHeld)
	ex.Unlock()
	ex.Unlock() // twice is fine
	assert.False(t, Held(p))

	s1, err := TryAcquire(p, Shared)
	require.NoError(t, err)
	s2, err := TryAcquire(p, Shared)
	require.NoError(t, err)
	_, err = TryAcquire(p, Exclusive)
	assert.ErrorIs(t, err, ErrHeld)
	s1.Unlock()
	s2.Unlock()
}

// A missing file is not held, and TryLockExisting does not create it.
func TestMissing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	assert.False(t, Held(p))
	_, err := TryAcquireExisting(p, Exclusive)
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.NoFileExists(t, p)
}

// A wait ends with its context, and a wait that can end still gets the
// lock once its holder lets go.
func TestLockWaitsUntilContextEnds(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	held, err := TryAcquire(p, Exclusive)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err = Acquire(ctx, p, Shared)
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	got := make(chan error, 1)
	go func() {
		l, err := Acquire(context.WithoutCancel(ctx), p, Exclusive)
		l.Unlock()
		got <- err
	}()
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go func() {
		l, err := Acquire(ctx2, p, Exclusive)
		l.Unlock()
		got <- err
	}()
	held.Unlock()
	require.NoError(t, <-got)
	require.NoError(t, <-got)
}

// A lock file removed by its holder while another waits for it: the
// waiter does not end up holding a lock on a name that no longer exists.
func TestRemovedWhileWaiting(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	held, err := TryAcquire(p, Exclusive)
	require.NoError(t, err)
	got := make(chan *Lock, 1)
	go func() {
		l, err := Acquire(context.Background(), p, Exclusive)
		assert.NoError(t, err)
		got <- l
	}()
	time.Sleep(20 * time.Millisecond) // the waiter has opened the file
	held.Remove()
	l := <-got
	defer l.Unlock()
	var st1, st2 os.FileInfo
	st1, err = os.Stat(p)
	require.NoError(t, err, "the waiter made the file again")
	st2, err = l.f.Stat()
	require.NoError(t, err)
	assert.True(t, os.SameFile(st1, st2), "the lock held is on the file the path names")
	assert.True(t, Held(p))
}
