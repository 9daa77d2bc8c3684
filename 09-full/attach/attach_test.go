package attach

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type fakeContainer struct {
	mu      sync.Mutex
	stdin   bytes.Buffer
	closed  bool
	resized string
}

func serve(t *testing.T) (*Server, *fakeContainer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "attach.sock")
	s, err := Listen(path)
	require.NoError(t, err)
	fc := &fakeContainer{}
	s.OnStdin = func(p []byte) { fc.mu.Lock(); fc.stdin.Write(p); fc.mu.Unlock() }
	s.OnCloseStdin = func() { fc.mu.Lock(); fc.closed = true; fc.mu.Unlock() }
	s.OnResize = func(r, c uint16) { fc.mu.Lock(); fc.resized = fmt.Sprintf("%dx%d", r, c); fc.mu.Unlock() }
	go s.Serve()
	t.Cleanup(func() { s.Close() })
	return s, fc, path
}

// waitClients waits until the server has n clients.
func waitClients(t *testing.T, s *Server, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		got := len(s.clients)
		s.mu.Unlock()
		if got == n {
			return
		}
		require.True(t, time.Now().Before(deadline), "%d clients, want %d", got, n)
	}
}

// Output reaches the client on its own stream, in order; the exit status
// ends the attachment; what the client typed reaches the container, and
// its end closes the container's stdin (stdin-once).
func TestStreamsAndExit(t *testing.T) {
	s, fc, path := serve(t)
	c, err := Dial(path, Options{Stdin: true, Stdout: true, Stderr: true, StdinOnce: true})
	require.NoError(t, err)
	defer c.Close()
	waitClients(t, s, 1)
	require.NoError(t, c.Resize(24, 80))

	var out, errb bytes.Buffer
	done := make(chan Result, 1)
	go func() {
		r, err := c.Stream(strings.NewReader("typed\n"), &out, &errb, DefaultDetachKeys)
		assert.NoError(t, err)
		done <- r
	}()
	s.Output(Stdout, []byte("one\n"))
	s.Output(Stderr, []byte("warn\n"))
	s.Output(Stdout, []byte("two\n"))
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		fc.mu.Lock()
		ok := fc.closed
		fc.mu.Unlock()
		if ok {
			break
		}
		require.True(t, time.Now().Before(deadline), "stdin-once did not close the container's stdin")
	}
	s.Exit(42)
	r := <-done
	assert.Equal(t, Result{Exited: true, Code: 42}, r)
	assert.Equal(t, "one\ntwo\n", out.String())
	assert.Equal(t, "warn\n", errb.String())
	fc.mu.Lock()
	defer fc.mu.Unlock()
	assert.Equal(t, "typed\n", fc.stdin.String())
	assert.Equal(t, "24x80", fc.resized)
}

// Ctrl-P Ctrl-Q detaches: the keys are not sent, what came before them is,
// a lone Ctrl-P followed by something else is passed on.
func TestDetachKeys(t *testing.T) {
	s, fc, path := serve(t)
	c, err := Dial(path, Options{Stdin: true, Stdout: true})
	require.NoError(t, err)
	defer c.Close()
	waitClients(t, s, 1)
	pr, pw := io.Pipe()
	done := make(chan Result, 1)
	go func() {
		r, err := c.Stream(pr, io.Discard, io.Discard, DefaultDetachKeys)
		assert.NoError(t, err)
		done <- r
	}()
	_, _ = pw.Write([]byte("ab\x10c"))
	_, _ = pw.Write([]byte("d\x10"))
	_, _ = pw.Write([]byte("\x11ignored"))
	select {
	case r := <-done:
		assert.Equal(t, Result{Detached: true}, r)
	case <-time.After(5 * time.Second):
		t.Fatal("the detach keys did not detach")
	}
	waitClients(t, s, 0)
	fc.mu.Lock()
	defer fc.mu.Unlock()
	assert.Equal(t, "ab\x10cd", fc.stdin.String())
	assert.False(t, fc.closed, "detaching leaves the container's stdin open")
}

// A client that does not read is dropped; the others and the container go
// on.
func TestSlowClientIsDropped(t *testing.T) {
	s, _, path := serve(t)
	slow, err := Dial(path, Options{Stdout: true})
	require.NoError(t, err)
	defer slow.Close()
	waitClients(t, s, 1)
	chunk := bytes.Repeat([]byte("z"), 32*1024)
	for i := 0; i < 4*queue; i++ {
		s.Output(Stdout, chunk) // never blocks
	}
	waitClients(t, s, 0)
}

func TestParseDetachKeys(t *testing.T) {
	k, err := ParseDetachKeys("ctrl-p,ctrl-q")
	require.NoError(t, err)
	assert.Equal(t, DefaultDetachKeys, k)
	k, err = ParseDetachKeys("a,ctrl-@,ctrl-[")
	require.NoError(t, err)
	assert.Equal(t, []byte{'a', 0, 27}, k)
	_, err = ParseDetachKeys("ctrl-1")
	assert.Error(t, err)
	_, err = ParseDetachKeys("abc")
	assert.Error(t, err)
}

func TestFrameBounds(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, writeFrame(&b, Stdout, []byte("hi")))
	kind, p, err := readFrame(&b, nil)
	require.NoError(t, err)
	assert.Equal(t, Stdout, kind)
	assert.Equal(t, "hi", string(p))
	_, _, err = readFrame(bytes.NewReader([]byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}), nil)
	assert.ErrorContains(t, err, "frame of")
}

// A socket path longer than a unix address holds (a 64-digit id under
// $XDG_RUNTIME_DIR) works through the directory's descriptor.
func TestLongSocketPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 64), strings.Repeat("e", 40))
	require.NoError(t, os.MkdirAll(dir, 0o700))
	path := filepath.Join(dir, "attach.sock")
	require.Greater(t, len(path), 108)
	s, err := Listen(path)
	require.NoError(t, err)
	go s.Serve()
	defer s.Close()
	c, err := Dial(path, Options{Stdout: true})
	require.NoError(t, err)
	c.Close()
}

// A server that closes after another has made its socket at the same
// path (the container's next run: restart, while this monitor waited for
// a slow client) leaves that socket alone; its own it removes.
func TestCloseLeavesTheNextServersSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "attach.sock")
	old, err := Listen(path)
	require.NoError(t, err)
	next, err := Listen(path) // removes the old name, makes its own
	require.NoError(t, err)
	go next.Serve()
	require.NoError(t, old.Close())
	assert.FileExists(t, path, "the next run's socket")
	c, err := Dial(path, Options{})
	require.NoError(t, err, "the next run's socket still answers")
	c.Close()
	require.NoError(t, next.Close())
	assert.NoFileExists(t, path, "its own socket, Close removes")
}

// A client that does not read is dropped once 1 MiB waits for it: before,
// 1024 frames of 32 KiB (32 MiB of the monitor's memory) could.
func TestSlowClientBoundedInBytes(t *testing.T) {
	s, _, path := serve(t)
	c, err := Dial(path, Options{Stdout: true})
	require.NoError(t, err)
	defer c.Close() // and never reads
	waitClients(t, s, 1)
	chunk := bytes.Repeat([]byte("x"), 32*1024)
	for range 200 { // 6.4 MiB: past the socket's buffers and the bound, far below 1024 frames
		s.Output(Stdout, chunk)
	}
	waitClients(t, s, 0)
}
