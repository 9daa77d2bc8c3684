//go:build linux

package nsenter

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestTargetOrders(t *testing.T) {
	have := func(ns Namespace) bool { _, err := os.Lstat("/proc/self/ns/" + string(ns)); return err == nil }
	var every []string
	for _, f := range flags {
		if have(f.ns) {
			every = append(every, string(f.ns)+"=/proc/7/ns/"+string(f.ns))
		}
	}
	for _, tc := range []struct {
		name    string
		target  Target
		want    []string // kind=path, in the order sent
		wantErr string
	}{
		{"every kind of a pid", Target{Pid: 7}, every, ""},
		{"some kinds", Target{Pid: 7, Namespaces: []Namespace{Mount, User, Net}},
			[]string{"user=/proc/7/ns/user", "net=/proc/7/ns/net", "mnt=/proc/7/ns/mnt"}, ""},
		{"a path replaces the pid's file", Target{Pid: 7, Namespaces: []Namespace{Net, UTS}, Paths: map[Namespace]string{Net: "/run/netns/x"}},
			[]string{"uts=/proc/7/ns/uts", "net=/run/netns/x"}, ""},
		{"paths only", Target{Paths: map[Namespace]string{Mount: "/m", IPC: "/i"}}, []string{"ipc=/i", "mnt=/m"}, ""},
		{"unknown kind", Target{Paths: map[Namespace]string{"bogus": "/x"}}, nil, `unknown namespace kind "bogus"`},
		{"unknown kind of a pid", Target{Pid: 7, Namespaces: []Namespace{"pid_for_children"}}, nil, "unknown namespace kind"},
		{"nothing", Target{}, nil, "no namespace to join"},
		{"kinds without a pid", Target{Namespaces: []Namespace{Net}}, nil, "without a Pid"},
		{"negative pid", Target{Pid: -1}, nil, "target pid -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orders, err := tc.target.orders()
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			var got []string
			for _, o := range orders {
				got = append(got, string(o.ns)+"="+o.path)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestFrames(t *testing.T) {
	var buf bytes.Buffer
	p, err := joinPayload(unix.CLONE_NEWNET, "/run/netns/x")
	require.NoError(t, err)
	require.NoError(t, writeFrame(&buf, msgJoin, p))
	require.NoError(t, writeFrame(&buf, msgContinue, nil))
	f, err := readFrame(&buf)
	require.NoError(t, err)
	assert.Equal(t, uint32(msgJoin), f.typ)
	assert.Equal(t, uint32(unix.CLONE_NEWNET), binary.NativeEndian.Uint32(f.payload))
	assert.Equal(t, "/run/netns/x", string(f.payload[4:]))
	f, err = readFrame(&buf)
	require.NoError(t, err)
	assert.Equal(t, frame{typ: msgContinue, payload: []byte{}}, f)
	_, err = readFrame(&buf)
	assert.ErrorIs(t, err, io.EOF)

	// What the other side must never be sent or believe.
	assert.Error(t, writeFrame(io.Discard, msgLog, make([]byte, maxPayload+1)))
	_, err = joinPayload(unix.CLONE_NEWNS, "/a\x00b")
	assert.ErrorContains(t, err, "NUL")
	_, err = joinPayload(unix.CLONE_NEWNS, "/"+strings.Repeat("a", maxPath))
	assert.Error(t, err)
	_, err = joinPayload(unix.CLONE_NEWNS, "")
	assert.Error(t, err)
	long := binary.NativeEndian.AppendUint32(binary.NativeEndian.AppendUint32(nil, msgLog), maxPayload+1)
	_, err = readFrame(bytes.NewReader(long))
	assert.ErrorContains(t, err, "longer than")
	short := binary.NativeEndian.AppendUint32(binary.NativeEndian.AppendUint32(nil, msgLog), 10)
	_, err = readFrame(bytes.NewReader(append(short, "abc"...)))
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

func TestFrameError(t *testing.T) {
	p := binary.NativeEndian.AppendUint32(nil, uint32(unix.EPERM))
	err := frameError(append(p, "setns mnt /proc/1/ns/mnt"...))
	assert.EqualError(t, err, "nsenter: setns mnt /proc/1/ns/mnt: operation not permitted")
	assert.True(t, errors.Is(err, unix.EPERM))
	err = frameError(append(binary.NativeEndian.AppendUint32(nil, 0), "open x: not a namespace file"...))
	assert.EqualError(t, err, "nsenter: open x: not a namespace file")
	assert.Error(t, frameError([]byte{1}))
}

func TestCloseExtraFDs(t *testing.T) {
	open := func() int {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY, 0) // no O_CLOEXEC, as an inherited one
		require.NoError(t, err)
		t.Cleanup(func() { unix.Close(fd) })
		return fd
	}
	kept, leaked := open(), open()
	require.Less(t, kept, leaked)
	require.NoError(t, CloseExtraFDs(leaked-3))
	cloexec := func(fd int) bool {
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		require.NoError(t, err)
		return fl&unix.FD_CLOEXEC != 0
	}
	assert.False(t, cloexec(kept), "below 3+keep: passed on purpose")
	assert.True(t, cloexec(leaked))
	assert.Error(t, CloseExtraFDs(-1))
}

// Chdir refuses a directory it cannot name from the root; the escape
// through a leaked descriptor is checked end to end in TestCwdOutsideRoot.
func TestChdirRemoved(t *testing.T) {
	wd, err := os.Getwd()
	require.NoError(t, err)
	defer func() { require.NoError(t, os.Chdir(wd)) }()

	dir := t.TempDir()
	require.NoError(t, Chdir(dir))
	gone := filepath.Join(dir, "gone")
	require.NoError(t, os.Mkdir(gone, 0o755))
	require.NoError(t, os.Chdir(gone))
	require.NoError(t, os.Remove(gone))
	assert.ErrorContains(t, Chdir("."), "removed")
	assert.ErrorContains(t, Chdir("/no/such/dir"), "chdir /no/such/dir: no such file or directory")
}
