//go:build linux

package rootfs_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"berth/internal/testenv"
)

// runTTY runs 03-mount on a 40x100 terminal of the test's, as a learner
// would from a shell, with TERM=vt100.
func runTTY(t *testing.T, args ...string) *testenv.Terminal {
	t.Helper()
	env := append(testenv.StateEnv(t), "TERM=vt100")
	return testenv.StartTerminal(t, env, 40, 100, testenv.Binary(t, "03-mount"), append([]string{"run"}, args...)...)
}

// With -t the command's terminal comes from the container's own devpts, as
// with `docker run -t busybox tty`: the first pty there, /dev/pts/0, on
// stdin, stdout and stderr, and bound onto /dev/console. TERM is the
// runtime's.
func TestTTYIsTheContainersOwn(t *testing.T) {
	testenv.RequireRoot(t)
	out, code := runTTY(t, "-t", "tty").Wait()
	assert.Equal(t, 0, code, out)
	assert.Equal(t, "/dev/pts/0\n", out)

	out, code = runTTY(t, "-t", "sh", "-c",
		"test -t 0 && test -t 1 && test -t 2 && echo ok; for fd in 0 1 2; do readlink /proc/self/fd/$fd; done; "+
			"ls -1 /dev/pts; test /dev/console -ef /dev/pts/0 && echo console-is-pts0; echo TERM=$TERM").Wait()
	assert.Equal(t, 0, code, out)
	assert.Equal(t, "ok\n/dev/pts/0\n/dev/pts/0\n/dev/pts/0\n0\nptmx\nconsole-is-pts0\nTERM=vt100\n", out)
}

// The runtime need not sit on a terminal itself: it copies the container's
// pty to whatever its stdout is (the chapters' runner does this).
func TestTTYWithoutATerminal(t *testing.T) {
	testenv.RequireRoot(t)
	r := run(t, "-t", "tty")
	assert.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "/dev/pts/0\r\n", r.Stdout) // the pty's line discipline turns \n into \r\n
}

// What the learner types reaches the command through the runtime.
func TestTTYInput(t *testing.T) {
	testenv.RequireRoot(t)
	term := runTTY(t, "-t", "sh", "-c", "echo ready; read x; echo got $x")
	term.WaitFor("ready\n")
	term.Type("hello\n")
	out, code := term.Wait()
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "got hello\n")
}

func TestTTYExitCode(t *testing.T) {
	testenv.RequireRoot(t)
	out, code := runTTY(t, "-t", "sh", "-c", "exit 3").Wait()
	assert.Equal(t, 3, code, out)

	out, code = runTTY(t, "-t", "no-such-command").Wait()
	assert.Equal(t, 127, code, out)
	assert.Contains(t, out, `03-mount: exec: "no-such-command": executable file not found in $PATH`)
}

// The container's terminal has the size of the learner's from the start,
// and follows it when it changes (SIGWINCH).
func TestTTYWindowSize(t *testing.T) {
	testenv.RequireRoot(t)
	term := runTTY(t, "-t", "sh", "-c",
		`echo "size $(stty size)"; until [ "$(stty size)" = "50 120" ]; do sleep 0.1; done; echo "resized to $(stty size)"`)
	term.WaitFor("size 40 100\n")
	term.Resize(50, 120)
	out, code := term.Wait()
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "resized to 50 120\n")
}

// With --init, the init holds the terminal as its controlling terminal and
// gives the foreground to the command: Ctrl-C reaches the command, which
// as PID 1 without --init would ignore it.
func TestTTYWithInit(t *testing.T) {
	testenv.RequireRoot(t)
	out, code := runTTY(t, "--init", "-t", "sh", "-c", "tty; test $$ != 1 && echo not-pid-1").Wait()
	assert.Equal(t, 0, code, out)
	assert.Equal(t, "/dev/pts/0\nnot-pid-1\n", out)

	term := runTTY(t, "--init", "-t", "sh", "-c", "echo ready; exec sleep 600")
	term.WaitFor("ready\n")
	term.Type("\x03")
	out, code = term.Wait()
	assert.Equal(t, 130, code, out)
}
