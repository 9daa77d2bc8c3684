//go:build linux

package uts_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

func TestHostnameIsPrivate(t *testing.T) {
	testenv.RequireRoot(t)
	bin := testenv.Binary(t, "01-uts")
	before, err := os.Hostname()
	require.NoError(t, err)

	r := testenv.Run(t, testenv.StateEnv(t), bin, "run", "--hostname", "inside", "sh", "-c", "hostname; echo $HOSTNAME")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "inside\ninside\n", r.Stdout)

	after, err := os.Hostname()
	require.NoError(t, err)
	assert.Equal(t, before, after, "the host's hostname must not change")
}

func TestDefaultHostnameIsShortID(t *testing.T) {
	testenv.RequireRoot(t)
	r := testenv.Run(t, testenv.StateEnv(t), testenv.Binary(t, "01-uts"), "run", "hostname")
	require.Equal(t, 0, r.Code, r.String())
	assert.Regexp(t, regexp.MustCompile(`^[0-9a-f]{12}\n$`), r.Stdout)

	r = testenv.Run(t, testenv.StateEnv(t), testenv.Binary(t, "01-uts"), "run", "--id", "web1", "hostname")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "web1\n", r.Stdout, "the hostname defaults to the container id")
}

// The learner's check: the namespace behind /proc/self/ns/uts is another
// object inside the container, while the other namespaces are the host's.
func TestNamespaceInodes(t *testing.T) {
	testenv.RequireRoot(t)
	host := func(ns string) string {
		l, err := os.Readlink("/proc/self/ns/" + ns)
		require.NoError(t, err)
		return l
	}
	r := testenv.Run(t, testenv.StateEnv(t), testenv.Binary(t, "01-uts"), "run", "readlink", "/proc/self/ns/uts", "/proc/self/ns/pid", "/proc/self/ns/mnt")
	require.Equal(t, 0, r.Code, r.String())
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	require.Len(t, lines, 3)
	assert.NotEqual(t, host("uts"), lines[0], "uts namespace must be new")
	assert.Regexp(t, `^uts:\[\d+\]$`, lines[0])
	assert.Equal(t, host("pid"), lines[1], "01-uts creates no pid namespace")
	assert.Equal(t, host("mnt"), lines[2], "01-uts creates no mount namespace")
}

func TestVerboseShowsInodes(t *testing.T) {
	testenv.RequireRoot(t)
	r := testenv.Run(t, testenv.StateEnv(t), testenv.Binary(t, "01-uts"), "run", "--verbose", "--hostname", "demo", "true")
	require.Equal(t, 0, r.Code, r.String())
	hostNS, err := os.Readlink("/proc/self/ns/uts")
	require.NoError(t, err)
	assert.Contains(t, r.Stderr, "uts: host  /proc/self/ns/uts -> "+hostNS)
	assert.Regexp(t, `uts: child /proc/\d+/ns/uts -> uts:\[\d+\]`, r.Stderr)
	assert.Contains(t, r.Stderr, `hostname set to "demo"`)
	assert.Empty(t, r.Stdout)
}

func TestExitCodes(t *testing.T) {
	testenv.RequireRoot(t)
	bin := testenv.Binary(t, "01-uts")
	// 01-uts keeps the host's filesystem and working directory, so a
	// script next to the test is found as ./name.
	require.NoError(t, os.WriteFile("uts-test-script.sh", []byte("#!/bin/sh\nexit 7\n"), 0o755))
	t.Cleanup(func() { os.Remove("uts-test-script.sh") })
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"success", []string{"true"}, 0, ""},
		{"relative to the working directory", []string{"./uts-test-script.sh"}, 7, ""},
		{"failure", []string{"false"}, 1, ""},
		{"exit 42", []string{"sh", "-c", "exit 42"}, 42, ""},
		{"not executable", []string{"/etc/passwd"}, 126, "01-uts: exec /etc/passwd: permission denied\n"},
		{"not found", []string{"no-such-command"}, 127, "01-uts: exec: \"no-such-command\": executable file not found in $PATH\n"},
		{"killed by a signal", []string{"sh", "-c", "kill -KILL $$"}, 137, ""},
		{"bad flag", []string{"--no-such-flag", "true"}, 125, "01-uts: unknown flag: --no-such-flag (see '01-uts run --help')\n"},
		{"bad hostname", []string{"--hostname", "a_b", "true"}, 125, "01-uts: invalid --hostname \"a_b\": use letters, digits, '-' and '.', at most 64 characters\n"},
		{"bad id", []string{"--id", "../x", "true"}, 125, "01-uts: invalid container id \"../x\": use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testenv.Run(t, testenv.StateEnv(t), bin, append([]string{"run"}, tc.args...)...)
			assert.Equal(t, tc.code, r.Code, r.String())
			assert.Equal(t, tc.stderr, r.Stderr)
		})
	}
}

func TestStdioAndEnv(t *testing.T) {
	testenv.RequireRoot(t)
	bin := testenv.Binary(t, "01-uts")
	r := testenv.RunInput(t, testenv.StateEnv(t), "hello from stdin\n", bin, "run", "cat")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "hello from stdin\n", r.Stdout)

	r = testenv.Run(t, testenv.StateEnv(t), bin, "run", "sh", "-c", "echo out; echo err >&2")
	assert.Equal(t, "out\n", r.Stdout)
	assert.Equal(t, "err\n", r.Stderr)

	r = testenv.Run(t, append(testenv.StateEnv(t), "FROM_HOST=yes"), bin, "run", "-e", "A=1", "-e", "FROM_HOST", "sh", "-c", `echo "$A $FROM_HOST"`)
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "1 yes\n", r.Stdout)
}

func TestStateRemovedAfterRun(t *testing.T) {
	testenv.RequireRoot(t)
	env := testenv.StateEnv(t)
	r := testenv.Run(t, env, testenv.Binary(t, "01-uts"), "run", "--id", "gone", "true")
	require.Equal(t, 0, r.Code, r.String())
	state := strings.TrimPrefix(env[0], "BERTH_ROOT=")
	entries, err := os.ReadDir(state)
	require.NoError(t, err)
	assert.Empty(t, entries, "no state may remain after the container exits")
}

// Without a root of its own the container shares the host's devpts: its
// terminal is a new /dev/pts/N there, opened by the container's init, with
// the size of the learner's terminal. Nothing is mounted on the host's
// /dev/console.
func TestTTY(t *testing.T) {
	testenv.RequireRoot(t)
	term := testenv.StartTerminal(t, testenv.StateEnv(t), 40, 100, testenv.Binary(t, "01-uts"),
		"run", "-t", "--hostname", "box", "sh", "-c", "test -t 0 && test -t 1 && test -t 2 && echo ok; tty; stty size; hostname")
	out, code := term.Wait()
	require.Equal(t, 0, code, out)
	assert.Regexp(t, regexp.MustCompile(`^ok\n/dev/pts/[0-9]+\n40 100\nbox\n$`), out)

	mi, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	assert.NotContains(t, string(mi), " /dev/console ")
}
