//go:build exercise && linux

package exercises

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// 01-1: a hostname changed inside stays inside; nsenter --uts sees it.
func TestExercise01_1(t *testing.T) {
	a := answer(t, "01-1", 2)
	b := bin(t, "01-uts")
	env := testenv.StateEnv(t)
	before, err := os.Hostname()
	require.NoError(t, err)
	c := testenv.Start(t, env, b, "run", "--id", "ex011", "--hostname", "box", "sh", "-c", "hostname other; exec sleep 600")
	pid := testenv.ContainerPid(t, testenv.StateRoot(env), "ex011")
	r := testenv.Run(t, nil, "nsenter", "--target", fmt.Sprint(pid), "--uts", "hostname")
	require.Equal(t, 0, r.Code, r.String())
	seen := strings.TrimSpace(r.Stdout)
	after, err := os.Hostname()
	require.NoError(t, err)
	require.NoError(t, c.Cmd.Process.Kill())
	require.Equal(t, "other", seen, "the container's shell renamed its namespace: nsenter --uts shows it")
	require.Equal(t, before, after, "the host's name must not change")
	assert.True(t, same(a[0], seen), "line 1: nsenter --target PID --uts hostname prints %q, not %q", seen, a[0])
	assert.True(t, same(a[1], "yes"), "line 2: is the host's name unchanged? yes or no (it is: %q before and after), not %q", before, a[1])
}

// 01-2: --domainname sets the NIS domain name inside only.
func TestExercise01_2(t *testing.T) {
	b := bin(t, "01-uts")
	needFlag(t, "01-uts", b, "--domainname")
	env := testenv.StateEnv(t)
	host, err := os.ReadFile("/proc/sys/kernel/domainname")
	require.NoError(t, err)
	r := testenv.Run(t, env, b, "run", "--domainname", "example.org", "cat", "/proc/sys/kernel/domainname")
	require.Equal(t, 0, r.Code, "bin/01-uts run --domainname example.org ...: %s", r)
	assert.Equal(t, "example.org\n", r.Stdout, "inside, /proc/sys/kernel/domainname is the name given")
	after, err := os.ReadFile("/proc/sys/kernel/domainname")
	require.NoError(t, err)
	assert.Equal(t, string(host), string(after), "the host's domain name must not change")
	r = testenv.Run(t, env, b, "run", "cat", "/proc/sys/kernel/domainname")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, string(host), r.Stdout, "without --domainname the container keeps the host's (a copy, in its own namespace)")
	r = testenv.Run(t, env, b, "run", "--domainname", "not_valid!", "true")
	assert.Equal(t, 125, r.Code, "a bad --domainname is refused, as a bad --hostname is: %s", r)
	assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), "one line says what is wrong: %q", r.Stderr)
	assert.Contains(t, r.Stderr, "--domainname")
}

// 01-3: strace shows clone with CLONE_NEWUTS, then in that child execve of
// /proc/self/fd/N (berth-init: the sealed copy of the binary), sethostname,
// execve of the command.
// sealedRE is the child's first execve: the sealed copy of the binary,
// through the runtime's descriptor of it.
var sealedRE = regexp.MustCompile(`execve\("/proc/self/fd/\d+", \["berth-init"\]`)

func TestExercise01_3(t *testing.T) {
	a := answer(t, "01-3", 3)
	b := bin(t, "01-uts")
	if _, err := exec.LookPath("strace"); err != nil {
		t.Fatal("strace is not installed: sudo make setup (or apt-get install strace)")
	}
	out := testenv.Run(t, testenv.StateEnv(t), "strace", "-f", "-qq", "-e", "trace=clone,clone3,execve,sethostname", b, "run", "--hostname", "x", "true")
	require.Equal(t, 0, out.Code, out.String())
	lines := strings.Split(out.Stderr, "\n")
	// The clone that starts berth-init carries the namespace flag and no
	// CLONE_THREAD (the Go runtime's clones start its threads); the child
	// is the PID that then executes /proc/self/fd/N, the sealed copy.
	flags := map[string]bool{}
	pidRE := regexp.MustCompile(`^\[pid +(\d+)\] `)
	child := ""
	for _, l := range lines {
		if strings.Contains(l, "clone") && !strings.Contains(l, "CLONE_THREAD") {
			for _, f := range regexp.MustCompile(`CLONE_NEW[A-Z]+`).FindAllString(l, -1) {
				flags[strings.ToLower(f)] = true
			}
		}
		if m := pidRE.FindStringSubmatch(l); m != nil && child == "" && sealedRE.MatchString(l) {
			child = m[1]
		}
	}
	require.NotEmpty(t, flags, "no clone with a CLONE_NEW flag in:\n%s", out.Stderr)
	require.NotEmpty(t, child, "no child executing /proc/self/fd/N as berth-init in:\n%s", out.Stderr)
	var seq []string
	for _, l := range lines {
		m := pidRE.FindStringSubmatch(l)
		if m == nil || m[1] != child {
			continue
		}
		switch {
		case sealedRE.MatchString(l):
			seq = append(seq, "execve /proc/self/fd/N")
		case strings.Contains(l, "execve("):
			seq = append(seq, "execve")
		case strings.Contains(l, "sethostname("):
			seq = append(seq, "sethostname")
		}
	}
	require.Equal(t, []string{"execve /proc/self/fd/N", "sethostname", "execve"}, seq, "the child's traced calls, in order:\n%s", out.Stderr)
	assert.Equal(t, flags, words(a[0]), "line 1: the CLONE_NEW flag(s) of the clone that starts berth-init")
	assert.Regexp(t, `^/proc/self/fd/\d+$`, strings.TrimSpace(a[1]), "line 2: the file of the child's first execve, as strace shows it")
	assert.True(t, same(a[2], "sethostname"), "line 3: the traced call between the child's two execves, not %q", a[2])
}

// 01-4: a runtime killed with SIGKILL takes its container with it: the
// kernel sends the child SIGKILL (Pdeathsig).
func TestExercise01_4(t *testing.T) {
	a := answer(t, "01-4", 2)
	b := bin(t, "01-uts")
	env := testenv.StateEnv(t)
	c := testenv.Start(t, env, b, "run", "--id", "ex014", "sleep", "600")
	pid := testenv.ContainerPid(t, testenv.StateRoot(env), "ex014")
	require.NoError(t, c.Cmd.Process.Kill())
	testenv.WaitGone(t, pid) // fails if the sleep outlives its runtime
	assert.True(t, same(a[0], "no"), "line 1: does the sleep outlive the runtime? yes or no: not %q", a[0])
	sig := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(a[1])), "SIG")
	assert.True(t, sig == "KILL" || sig == "9", "line 2: the signal the kernel sends the sleep (Pdeathsig in 01-uts/spine/parent.go), not %q", a[1])
}

// 01-5: setns into a mount namespace from Go fails with EINVAL.
func TestExercise01_5(t *testing.T) {
	p := program(t, "01-5")
	b := bin(t, "02-pid")
	env := testenv.StateEnv(t)
	c := testenv.Start(t, env, b, "run", "--id", "ex015", "sleep", "600")
	pid := testenv.ContainerPid(t, testenv.StateRoot(env), "ex015")
	defer func() { _ = c.Cmd.Process.Kill() }()
	r := testenv.Run(t, nil, p, fmt.Sprint(pid))
	assert.Contains(t, strings.ToLower(r.Stdout+r.Stderr), "invalid argument",
		"answers/01-5 PID prints the error of unix.Setns on /proc/PID/ns/mnt: %s", r)
}
