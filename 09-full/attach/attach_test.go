package attach

import (
	"bytes"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The server half is the monitor's, in C (09-full/berth-monitor/attach.c,
// tested with this client in 09-full/berth-monitor/montest). Here a
// minimal one stands in for it, for what the client alone decides.

// fakeMonitor accepts one client, answers its hello, and collects what it
// sends on stdin until it goes.
func fakeMonitor(t *testing.T) (path string, stdin <-chan string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "attach.sock")
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	got := make(chan string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		var in bytes.Buffer
		defer func() { got <- in.String() }()
		if kind, _, err := readFrame(conn, nil); err != nil || kind != Hello {
			return
		}
		if writeFrame(conn, Hello, nil) != nil {
			return
		}
		for {
			kind, p, err := readFrame(conn, nil)
			if err != nil {
				return
			}
			if kind == Stdin {
				in.Write(p)
			}
		}
	}()
	return path, got
}

// Ctrl-P Ctrl-Q detaches: the keys are not sent, what came before them is,
// a lone Ctrl-P followed by something else is passed on.
func TestDetachKeys(t *testing.T) {
	path, stdin := fakeMonitor(t)
	c, err := Dial(path, Options{Stdin: true, Stdout: true})
	require.NoError(t, err)
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
	c.Close()
	assert.Equal(t, "ab\x10cd", <-stdin)
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
