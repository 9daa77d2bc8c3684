//go:build linux

package consolesock

import (
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The console socket carries the master as runc's --console-socket does:
// its name as the bytes, the descriptor beside them.
func TestConsoleSocket(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	recv := os.NewFile(uintptr(fds[1]), "recv")
	defer recv.Close()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	require.NoError(t, Send(fds[0], w))
	w.Close()
	got, err := Recv(recv)
	require.NoError(t, err)
	assert.Equal(t, w.Name(), got.Name())
	_, err = got.WriteString("via the console socket")
	require.NoError(t, err)
	got.Close()
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	assert.Equal(t, "via the console socket", string(b))
}
