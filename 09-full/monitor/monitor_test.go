//go:build linux

package monitor

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"berth/09-full/store"
)

// The exit file, written by hand here (no encoding/json in the monitor),
// is what the store reads.
func TestExitFileIsTheStores(t *testing.T) {
	s, err := store.Open(t.TempDir(), t.TempDir())
	require.NoError(t, err)
	id := store.NewID()
	dir, err := s.ClearLive(id)
	require.NoError(t, err)
	m := &monitor{cfg: Config{Live: dir}}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	require.NoError(t, m.writeExit(137, at))
	ex := s.ReadExit(id)
	require.NotNil(t, ex)
	assert.Equal(t, 137, ex.ExitCode)
	assert.True(t, at.Equal(ex.FinishedAt))
}

// The report line and the files that come with it, as internal create
// sends them (one sendmsg).
func TestReadReport(t *testing.T) {
	mine, theirs, err := socketPair("report")
	require.NoError(t, err)
	defer mine.Close()
	defer theirs.Close()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	require.NoError(t, unix.Sendmsg(int(theirs.Fd()), []byte("ok 42 1234\n"), unix.UnixRights(int(w.Fd())), nil, 0))
	w.Close()
	line, held, err := readReport(mine)
	require.NoError(t, err)
	assert.Equal(t, "ok 42 1234", line)
	require.Len(t, held, 1)
	_, err = held[0].WriteString("held")
	require.NoError(t, err)
	held[0].Close()
	b := make([]byte, 4)
	n, _ := r.Read(b)
	assert.Equal(t, "held", string(b[:n]))

	theirs.Close()
	_, _, err = readReport(mine)
	assert.Error(t, err, "no report: the helper died")
}

// The reaper keeps a status that comes before anyone asks for it.
func TestReaperKeepsEarlyStatus(t *testing.T) {
	r := newReaper()
	cmd := exec.Command("sh", "-c", "exit 7")
	require.NoError(t, cmd.Start())
	time.Sleep(200 * time.Millisecond) // it has exited, and been reaped
	ws := r.wait(cmd.Process.Pid)
	assert.Equal(t, 7, code(ws))
	cmd = exec.Command("sh", "-c", "kill -9 $$")
	require.NoError(t, cmd.Start())
	assert.Equal(t, 137, code(r.wait(cmd.Process.Pid)))
}

// Every file of the report arrives: 20 published ports are 20 sockets
// (the buffer had room for 16, and the kernel closed the rest, freeing
// their ports for anyone).
func TestReadReportTakesEveryFile(t *testing.T) {
	mine, theirs, err := socketPair("report")
	require.NoError(t, err)
	defer mine.Close()
	defer theirs.Close()
	var fds []int
	for range 20 {
		r, w, err := os.Pipe()
		require.NoError(t, err)
		defer r.Close()
		defer w.Close()
		fds = append(fds, int(w.Fd()))
	}
	require.NoError(t, unix.Sendmsg(int(theirs.Fd()), []byte("ok 42 1234\n"), unix.UnixRights(fds...), nil, 0))
	line, held, err := readReport(mine)
	require.NoError(t, err)
	assert.Equal(t, "ok 42 1234", line)
	assert.Len(t, held, 20)
	for _, f := range held {
		f.Close()
	}
}
