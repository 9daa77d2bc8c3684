//go:build exercise && linux

package exercises

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// 02-1: an orphan is re-parented to PID 1, where --init reaps it; NSpid
// gives its number in every namespace.
func TestExercise02_1(t *testing.T) {
	a := answer(t, "02-1", 2)
	b := bin(t, "02-pid")
	r := testenv.Run(t, testenv.StateEnv(t), b, "run", "--init", "--verbose", "sh", "-c",
		"(sleep 1 &); sleep 0.3; ps -o ppid=,args= | grep '[s]leep 1$'; sleep 1")
	require.Equal(t, 0, r.Code, r.String())
	assert.Regexp(t, `(?m)^ *1 sleep 1$`, r.Stdout, "the orphan's parent inside is PID 1")
	assert.Regexp(t, `init reaped orphan \d+`, r.Stderr, "--init reaps it and says so with --verbose")
	assert.True(t, same(a[0], "1"), "line 1: the orphan's parent PID inside, once its subshell has exited: not %q", a[0])
	assert.True(t, same(strings.TrimSuffix(a[1], ":"), "NSpid"), "line 2: the line of /proc/HOSTPID/status that gives its number in each namespace: not %q", a[1])
}

// sigCgt returns the caught-signals mask of pid.
func sigCgt(t *testing.T, pid int) uint64 {
	t.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^SigCgt:\s*([0-9a-f]+)$`).FindSubmatch(st)
	require.NotNil(t, m, "no SigCgt in /proc/%d/status", pid)
	v, err := strconv.ParseUint(string(m[1]), 16, 64)
	require.NoError(t, err)
	return v
}

// 02-2: a PID 1 that traps SIGTERM gets it: the trap is a handler, and the
// kernel drops only signals whose action is the default.
func TestExercise02_2(t *testing.T) {
	a := answer(t, "02-2", 2)
	b := bin(t, "02-pid")
	env := testenv.StateEnv(t)
	masks := map[string]uint64{}
	for _, tc := range []struct{ id, script string }{
		{"ex022a", `trap "echo got TERM; exit 0" TERM; sleep 600 & wait`},
		{"ex022b", `sleep 600 & wait`},
	} {
		c := testenv.Start(t, env, b, "run", "--id", tc.id, "sh", "-c", tc.script)
		pid := testenv.ContainerPid(t, testenv.StateRoot(env), tc.id)
		// The shell sets its handlers as it starts: wait for its child.
		waitChildren(t, pid)
		masks[tc.id] = sigCgt(t, pid)
		require.NoError(t, c.Cmd.Process.Signal(syscall.SIGTERM))
		if tc.id == "ex022a" {
			r := c.Wait(t)
			assert.Equal(t, 0, r.Code, "the trap exits 0, and so does the runtime: %s", r)
			assert.Equal(t, "got TERM\n", r.Stdout)
		} else {
			require.NoError(t, c.Cmd.Process.Kill())
		}
	}
	diff := masks["ex022a"] ^ masks["ex022b"]
	require.Equal(t, uint64(1)<<(15-1), diff, "the trap adds exactly SIGTERM's bit (15) to SigCgt: %x against %x", masks["ex022a"], masks["ex022b"])
	sig := strings.TrimPrefix(strings.ToUpper(a[0]), "SIG")
	assert.True(t, sig == "15" || sig == "TERM", "line 1: the signal whose bit the trap sets in SigCgt (compare with and without the trap): not %q", a[0])
	assert.True(t, same(a[1], "0"), "line 2: the runtime's exit status after the SIGTERM: not %q", a[1])
}

// waitChildren waits until pid has a child.
func waitChildren(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		if err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return
		}
	}
	t.Fatalf("process %d has started no child in 10s", pid)
}

// 02-3: --init-group signals the command's whole process group, as tini -g.
func TestExercise02_3(t *testing.T) {
	b := bin(t, "02-pid")
	env := testenv.StateEnv(t)
	needFlag(t, "02-pid", b, "--init-group")
	script := `trap "echo shell got TERM" TERM; sleep 600; echo done`

	c := testenv.Start(t, env, b, "run", "--id", "ex023", "--init", "--init-group", "sh", "-c", script)
	init := testenv.ContainerPid(t, testenv.StateRoot(env), "ex023")
	waitSleep(t, c, init)
	require.NoError(t, c.Cmd.Process.Signal(syscall.SIGTERM))
	r := c.Wait(t)
	require.Equal(t, 0, r.Code, "with --init-group the sleep gets the SIGTERM too and dies, the shell runs its trap and goes on: %s", r)
	assert.Equal(t, "shell got TERM\ndone\n", r.Stdout)

	// Without it, only the shell gets the signal, and it runs its trap
	// only once the sleep is done: still running a second later.
	c = testenv.Start(t, env, b, "run", "--id", "ex023b", "--init", "sh", "-c", script)
	init = testenv.ContainerPid(t, testenv.StateRoot(env), "ex023b")
	sleep := waitSleep(t, c, init)
	require.NoError(t, c.Cmd.Process.Signal(syscall.SIGTERM))
	time.Sleep(time.Second)
	_, err := os.Stat(fmt.Sprintf("/proc/%d", sleep))
	assert.NoError(t, err, "without --init-group the signal goes to the command alone, as before")
	require.NoError(t, c.Cmd.Process.Kill())
}

// waitSleep waits for the sleep under init's shell and returns its PID.
func waitSleep(t *testing.T, c *testenv.Background, init int) int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		out, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", init, init))
		if err != nil {
			break
		}
		for _, sh := range strings.Fields(string(out)) {
			kids, _ := os.ReadFile("/proc/" + sh + "/task/" + sh + "/children")
			for _, k := range strings.Fields(string(kids)) {
				comm, _ := os.ReadFile("/proc/" + k + "/comm")
				if strings.TrimSpace(string(comm)) == "sleep" {
					pid, _ := strconv.Atoi(k)
					return pid
				}
			}
		}
	}
	_ = c.Cmd.Process.Kill()
	t.Fatalf("no sleep under the init %d within 10s", init)
	return 0
}

// 02-4: PID namespaces nest: the inner sleep has a number in each.
func TestExercise02_4(t *testing.T) {
	a := answer(t, "02-4", 2)
	b := bin(t, "02-pid")
	env := testenv.StateEnv(t)
	// The container's environment is its spec's, not the runtime's: the
	// inner runtime gets its state root as a flag.
	state := testenv.StateRoot(env)
	c := testenv.Start(t, env, b, "run", "--id", "ex024", b, "run", "--root", state, "--id", "ex024in", "sleep", "600")
	// The inner runtime records the PID its own namespace gives the sleep;
	// on the host, the sleep is the child of the outer container's process
	// (the inner runtime).
	outer := testenv.ContainerPid(t, state, "ex024")
	var inner int
	until(t, "the inner sleep", func() bool {
		kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", outer, outer))
		for _, k := range strings.Fields(string(kids)) {
			if comm, _ := os.ReadFile("/proc/" + k + "/comm"); strings.TrimSpace(string(comm)) == "sleep" {
				inner, _ = strconv.Atoi(k)
			}
		}
		return inner != 0
	})
	defer func() {
		// The sleep first: both runtimes then end as they should, and
		// clean up. (Killed, the outer one would take the inner one with
		// it, whose state would wait for the next run to collect it.)
		_ = syscall.Kill(inner, syscall.SIGKILL)
		c.Wait(t)
	}()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", inner))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^NSpid:\s*(.*)$`).FindSubmatch(st)
	require.NotNil(t, m)
	nspid := strings.Fields(string(m[1]))
	require.Len(t, nspid, 3, "the inner sleep's NSpid, seen from the host")
	r := testenv.Run(t, env, b, "run", b, "run", "--root", state, "grep", "NSpid", "/proc/self/status")
	require.Equal(t, 0, r.Code, r.String())
	inside := strings.Fields(strings.TrimPrefix(strings.TrimSpace(r.Stdout), "NSpid:"))
	require.Len(t, inside, 1, "NSpid inside the inner container: %q", r.Stdout)
	assert.True(t, same(a[0], fmt.Sprint(len(nspid))), "line 1: how many numbers the NSpid line of the inner sleep has, read on the host: not %q", a[0])
	assert.True(t, same(a[1], "1"), "line 2: how many it has read inside the inner container: not %q", a[1])
}

// 02-5: PR_SET_CHILD_SUBREAPER makes a process the reaper of its
// descendants' orphans.
func TestExercise02_5(t *testing.T) {
	p := program(t, "02-5")
	r := testenv.Run(t, nil, p)
	require.Equal(t, 0, r.Code, "answers/02-5 ends once it has reaped the orphan: %s", r)
	assert.Regexp(t, `(?m)^reaped orphan \d+$`, r.Stdout, "answers/02-5 prints 'reaped orphan PID' for the sleep it did not start")
}

// 02-6: a POSIX message queue lives in the IPC namespace of its creator.
func TestExercise02_6(t *testing.T) {
	a := answer(t, "02-6", 1)
	b := bin(t, "03-mount")
	env := testenv.StateEnv(t)
	c := testenv.Start(t, env, b, "run", "--id", "ex026", "sh", "-c", "touch /dev/mqueue/q && ls /dev/mqueue && sleep 600")
	testenv.ContainerPid(t, testenv.StateRoot(env), "ex026")
	defer func() { _ = c.Cmd.Process.Kill() }()
	r := testenv.Run(t, env, b, "run", "ls", "-A", "/dev/mqueue")
	require.Equal(t, 0, r.Code, r.String())
	require.Empty(t, r.Stdout, "a second container's /dev/mqueue is empty while the first holds a queue")
	assert.True(t, same(a[0], "no"), "line 1: does the second container see the first one's queue (yes or no)? not %q", a[0])
}
