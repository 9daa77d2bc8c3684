//go:build linux

package sealexe

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestSeal(t *testing.T) {
	f, err := Seal("/proc/self/exe")
	require.NoError(t, err)
	defer f.Close()
	assert.True(t, IsSealed(f))
	exe, err := os.Stat("/proc/self/exe")
	require.NoError(t, err)
	st, err := f.Stat()
	require.NoError(t, err)
	assert.Equal(t, exe.Size(), st.Size())

	// Not even its creator can change it, through its own descriptor or
	// a new one.
	_, err = f.WriteAt([]byte("x"), 0)
	assert.ErrorIs(t, err, unix.EPERM)
	assert.ErrorIs(t, f.Truncate(0), unix.EPERM)
	w, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(int(f.Fd())), os.O_WRONLY, 0)
	if err == nil {
		_, err = w.Write([]byte("x"))
		w.Close()
	}
	assert.ErrorIs(t, err, unix.EPERM)
	_, err = unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, 0) // F_SEAL_SEAL: no more seal changes
	assert.ErrorIs(t, err, unix.EPERM)

	plain, err := os.Open("/proc/self/exe")
	require.NoError(t, err)
	defer plain.Close()
	assert.False(t, IsSealed(plain), "a file on a filesystem")

	s1, err := SealedSelf()
	require.NoError(t, err)
	s2, err := SealedSelf()
	require.NoError(t, err)
	assert.Same(t, s1, s2, "one copy per process")

	_, err = Seal(t.TempDir())
	assert.ErrorContains(t, err, "not a regular file")
}

// TestStartFrom: a child started by os/exec from the sealed copy runs the
// copy, whatever the descriptor layout: files os/exec must move up first
// (fd[i] < i: os.Stdin passed four times) while the numbers just above the
// child's are taken here (16 open files), so its fork code dups them to
// numbers a duplicate of the copy might have had (the old ExecPath took the
// lowest free number above the child's files: there, with this layout, the
// child executed the sync pipe instead, EACCES).
func TestStartFrom(t *testing.T) {
	sealed, err := Seal("/bin/sh")
	require.NoError(t, err)
	defer sealed.Close()
	var held []*os.File
	defer func() {
		for _, f := range held {
			f.Close()
		}
	}()
	for _, extra := range [][]*os.File{nil, {os.Stdin}, {os.Stdin, os.Stdin, os.Stdin, os.Stdin}} {
		for _, hold := range []int{0, 16} {
			for len(held) < hold {
				f, err := os.Open(os.DevNull)
				require.NoError(t, err)
				held = append(held, f)
			}
			cmd := exec.Command("/nonexistent", "-c", "readlink /proc/$$/exe")
			cmd.ExtraFiles = append([]*os.File{}, extra...)
			StartFrom(cmd, sealed)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%d extra files, %d held: %s", len(extra), hold, out)
			assert.True(t, strings.HasPrefix(string(out), "/memfd:"+Name+" (deleted)\n"), "%q", out)
		}
	}
}

// BenchmarkSeal is what the sealed copy costs each container start: one
// copy of the runtime's binary (SealedSelf makes it once per process, and
// berth run, berth-oci create and bin/0N-* run start one container each).
// The binaries of $BERTH_BIN (make build) when there are, else this test.
func BenchmarkSeal(b *testing.B) {
	paths := map[string]string{"test": "/proc/self/exe"}
	if dir := os.Getenv("BERTH_BIN"); dir != "" {
		paths = map[string]string{}
		for _, name := range []string{"01-uts", "berth-oci", "berth"} {
			paths[name] = dir + "/" + name
		}
	}
	for name, p := range paths {
		b.Run(name, func(b *testing.B) {
			st, err := os.Stat(p)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(st.Size())
			for b.Loop() {
				f, err := Seal(p)
				if err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		})
	}
}
