package logfile

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func write(t *testing.T, w *Writer, n int, stream string, at time.Time) {
	t.Helper()
	for i := 0; i < n; i++ {
		require.NoError(t, w.Write(Entry{Log: strings.Repeat("x", 50) + "\n", Stream: stream, Time: at.Add(time.Duration(i) * time.Second)}))
	}
}

func readAll(t *testing.T, path string, o ReadOptions) []Entry {
	t.Helper()
	var out []Entry
	require.NoError(t, Read(context.Background(), path, o, func(e Entry) error {
		out = append(out, e)
		return nil
	}))
	return out
}

// max-size and max-file as Docker's: at most max-file files, none past
// max-size, and the oldest dropped first.
func TestRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := Open(path, 1000, 3)
	require.NoError(t, err)
	t0 := time.Unix(1000, 0)
	write(t, w, 100, Stdout, t0)
	require.NoError(t, w.Close())
	for _, p := range []string{path, path + ".1", path + ".2"} {
		st, err := os.Stat(p)
		require.NoError(t, err, p)
		assert.LessOrEqual(t, st.Size(), int64(1000), p)
	}
	assert.NoFileExists(t, path+".3")

	all := readAll(t, path, ReadOptions{Tail: -1})
	require.NotEmpty(t, all)
	assert.Equal(t, t0.Add(99*time.Second), all[len(all)-1].Time.Local())
	for i := 1; i < len(all); i++ {
		assert.Equal(t, time.Second, all[i].Time.Sub(all[i-1].Time), "in order, none lost within the kept files")
	}
	assert.Less(t, len(all), 100, "the oldest were dropped")

	tail := readAll(t, path, ReadOptions{Tail: 3})
	assert.Equal(t, all[len(all)-3:], tail)
	since := readAll(t, path, ReadOptions{Tail: -1, Since: t0.Add(97 * time.Second), Until: t0.Add(99 * time.Second)})
	require.Len(t, since, 2)
	assert.Equal(t, t0.Add(97*time.Second), since[0].Time.Local())
	assert.Empty(t, readAll(t, path, ReadOptions{Tail: 0}))
	assert.Empty(t, readAll(t, filepath.Join(t.TempDir(), "none"), ReadOptions{Tail: -1}))
}

// A follower sees every entry once, in order, across rotations, and stops
// when the writer is done.
func TestFollowAcrossRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := Open(path, 700, 5)
	require.NoError(t, err)
	t0 := time.Unix(2000, 0)
	write(t, w, 3, Stdout, t0)

	var mu sync.Mutex
	done := false
	var got []Entry
	tailed := make(chan struct{})
	finished := make(chan error, 1)
	go func() {
		finished <- Read(context.Background(), path, ReadOptions{Tail: 2, Follow: true, Poll: 5 * time.Millisecond,
			Done: func() bool { mu.Lock(); defer mu.Unlock(); return done }},
			func(e Entry) error {
				if got = append(got, e); len(got) == 2 {
					close(tailed) // the tail is of what was there when it began
				}
				return nil
			})
	}()
	<-tailed
	for i := 3; i < 40; i++ {
		require.NoError(t, w.Write(Entry{Log: strings.Repeat("y", 50) + "\n", Stream: Stderr, Time: t0.Add(time.Duration(i) * time.Second)}))
		time.Sleep(2 * time.Millisecond)
	}
	require.NoError(t, w.Close())
	mu.Lock()
	done = true
	mu.Unlock()
	select {
	case err := <-finished:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not end once the writer was done")
	}
	require.Len(t, got, 39, "the last 2 of 3, then 37 more")
	for i, e := range got {
		assert.Equal(t, t0.Add(time.Duration(i+1)*time.Second), e.Time.Local())
	}
}

// A half-written last line is not an entry yet.
func TestPartialLineWaits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	line := AppendJSON(nil, Entry{Log: "a\n", Stream: Stdout, Time: time.Unix(1, 0)})
	require.NoError(t, os.WriteFile(path, append(line, line[:10]...), 0o600))
	assert.Len(t, readAll(t, path, ReadOptions{Tail: -1}), 1)
	require.NoError(t, os.WriteFile(path, []byte("not json\n"), 0o600))
	assert.ErrorContains(t, Read(context.Background(), path, ReadOptions{Tail: -1}, func(Entry) error { return nil }), "not a log entry")
}

// With max-size and max-file 1 (the default), a follower sees the lines
// written after a rotation: the rotation made a new file. Before, it
// truncated the file in place, and the follower, at its old offset past
// the new end, never read them.
func TestFollowAcrossRotationToOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := Open(path, 700, 1)
	require.NoError(t, err)
	t0 := time.Unix(2000, 0)
	write(t, w, 5, Stdout, t0)

	var mu sync.Mutex
	done := false
	var got []Entry
	first := make(chan struct{})
	finished := make(chan error, 1)
	go func() {
		finished <- Read(context.Background(), path, ReadOptions{Tail: -1, Follow: true, Poll: 5 * time.Millisecond,
			Done: func() bool { mu.Lock(); defer mu.Unlock(); return done }},
			func(e Entry) error {
				mu.Lock()
				defer mu.Unlock()
				if got = append(got, e); len(got) == 5 {
					close(first)
				}
				return nil
			})
	}()
	<-first // the follower is at the end of the first file
	for i := 5; i < 10; i++ {
		require.NoError(t, w.Write(Entry{Log: "line\n", Stream: Stdout, Time: t0.Add(time.Duration(i) * time.Second)}))
	}
	require.NoError(t, w.Close())
	mu.Lock()
	done = true
	mu.Unlock()
	select {
	case err := <-finished:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not end once the writer was done")
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Len(t, got, 10, "every line, those after the rotation included")
}
