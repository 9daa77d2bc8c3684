//go:build linux

package spine

import (
	"io"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func socketPair(t *testing.T) (parent, child *channel) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	p, c := os.NewFile(uintptr(fds[0]), "parent"), os.NewFile(uintptr(fds[1]), "child")
	t.Cleanup(func() { p.Close(); c.Close() })
	return newChannel(p), newChannel(c)
}

// A console message brings its descriptor, even when messages around it
// arrive together and the JSON decoder reads them in one go.
func TestConsoleMessageCarriesFile(t *testing.T) {
	parent, child := socketPair(t)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()

	// Everything is sent before the parent reads a byte.
	require.NoError(t, child.send(message{Type: msgGo}))
	require.NoError(t, child.sendFile(message{Type: msgConsole}, w))
	w.Close() // the parent's copy must be all that is left
	require.NoError(t, child.send(message{Type: msgError, Error: "after", Code: 7}))
	require.NoError(t, child.sock.Close())

	m, err := parent.expect(msgGo)
	require.NoError(t, err, m)
	m, err = parent.expect(msgConsole)
	require.NoError(t, err, m)
	f, err := parent.takeFile()
	require.NoError(t, err)
	_, err = f.WriteString("through the passed descriptor")
	require.NoError(t, err)
	f.Close()
	got, err := io.ReadAll(r)
	require.NoError(t, err)
	assert.Equal(t, "through the passed descriptor", string(got))

	m, err = parent.expect(msgError)
	require.NoError(t, err)
	assert.Equal(t, message{Type: msgError, Error: "after", Code: 7}, m)
	_, err = parent.recv()
	assert.ErrorIs(t, err, io.EOF)
	_, err = parent.takeFile()
	assert.ErrorContains(t, err, "without its file descriptor")
}

// A descriptor nobody takes is closed with the channel.
func TestChannelCloseClosesUntakenFiles(t *testing.T) {
	parent, child := socketPair(t)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	require.NoError(t, child.sendFile(message{Type: msgConsole}, w))
	w.Close()
	_, err = parent.expect(msgConsole)
	require.NoError(t, err)
	parent.close()
	// With the last write end closed, the read end sees EOF.
	got, err := io.ReadAll(r)
	require.NoError(t, err)
	assert.Empty(t, got)
}

// The child executes the command right after decoding "go": whatever of
// the parent's messages it left unread would make the kernel report the
// close to the parent as ECONNRESET instead of EOF. For every size of
// config, nothing is left.
func TestNothingLeftUnreadAfterGo(t *testing.T) {
	for pad := 0; pad < 2100; pad++ {
		parent, child := socketPair(t)
		config := message{Type: msgConfig, Error: strings.Repeat("x", pad)}
		require.NoError(t, parent.send(config))
		require.NoError(t, parent.send(message{Type: msgGo}))
		_, err := child.expect(msgConfig)
		require.NoError(t, err)
		_, err = child.expect(msgGo)
		require.NoError(t, err)
		child.sock.Close() // as execve does
		_, err = parent.recv()
		require.ErrorIs(t, err, io.EOF, "config of %d bytes", pad)
		parent.sock.Close()
	}
}
