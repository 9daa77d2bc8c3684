//go:build exercise && linux

package exercises

// The exercises of docs/09-security.md, 09-6 to 09-11 (chapter 09's
// exercises are numbered on across its chapters; 09-full.md has 1-5).

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/09-full/security/seccomp"
	"berth/internal/testenv"
)

// berthRun runs bin/berth run --rm on the busybox tree (or root), with a
// private data and state root, and returns the result.
func berthRun(t *testing.T, root string, args ...string) testenv.Result {
	t.Helper()
	testenv.RequireRoot(t)
	if root == "" {
		root = testenv.Rootfs(t)
	}
	b := testenv.Berth(t)
	return testenv.Run(t, testenv.StateEnv(t), b, append([]string{"run", "--rm", "--rootfs", root, "--network", "none"}, args...)...)
}

// breakcheckRoot is a copy of the busybox tree with the chapter's
// breakcheck in /bin, with mode.
func breakcheckRoot(t *testing.T, mode os.FileMode) string {
	t.Helper()
	root := testenv.CopyRootfs(t)
	goCmd := "go"
	if _, err := exec.LookPath(goCmd); err != nil {
		goCmd = "/usr/local/go/bin/go"
	}
	dst := filepath.Join(root, "bin", "breakcheck")
	cmd := exec.Command(goCmd, "build", "-buildvcs=false", "-o", dst, "./09-full/security/internal/breakcheck")
	cmd.Dir = repo(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	require.NoError(t, os.Chown(dst, 0, 0))
	require.NoError(t, os.Chmod(dst, mode))
	return root
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// 09-6: --cap-add SYS_ADMIN undoes the read-only /proc/sys (a fresh
// procfs) and the masked paths (umount). Nothing is written: test -w
// asks access(2).
func TestExercise09_6(t *testing.T) {
	a := answer(t, "09-6", 3)
	r := berthRun(t, "", "--cap-add", "SYS_ADMIN", "sh", "-c",
		`mkdir -p /mnt/p && mount -t proc proc /mnt/p && if test -w /mnt/p/sys/kernel/core_pattern; then echo yes; else echo no; fi
		if umount /proc/timer_list 2>/dev/null; then echo yes; else echo no; fi
		if [ "$(wc -c < /proc/timer_list)" -gt 0 ]; then echo yes; else echo no; fi`)
	require.Equal(t, 0, r.Code, r.String())
	got := strings.Fields(r.Stdout)
	require.Len(t, got, 3, r.String())
	for i, what := range []string{
		"is a fresh procfs's sys/kernel/core_pattern writable (yes or no)",
		"does umount /proc/timer_list succeed (yes or no)",
		"then, does /proc/timer_list read the host's timers (yes or no)",
	} {
		assert.True(t, same(a[i], got[i]), "line %d: %s: %s, not %q", i+1, what, got[i], a[i])
	}
}

// 09-7: a profile's action on mkdir: SCMP_ACT_KILL_PROCESS kills with
// SIGSYS; SCMP_ACT_ERRNO with errnoRet 28 is ENOSPC.
func TestExercise09_7(t *testing.T) {
	a := answer(t, "09-7", 3)
	dir := t.TempDir()
	kill := filepath.Join(dir, "kill.json")
	nospc := filepath.Join(dir, "nospc.json")
	require.NoError(t, os.WriteFile(kill, []byte(`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]}`), 0o644))
	require.NoError(t, os.WriteFile(nospc, []byte(`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28}]}`), 0o644))
	r := berthRun(t, "", "--security-opt", "seccomp="+kill, "mkdir", "/tmp/d")
	code := strconv.Itoa(r.Code)
	assert.True(t, same(a[0], code), "line 1: berth run's exit code when mkdir is killed: %s, not %q", code, a[0])
	sig := "SIGSYS"
	if r.Code != 128+31 {
		sig = "signal " + strconv.Itoa(r.Code-128)
	}
	assert.True(t, same(strings.TrimPrefix(strings.ToUpper(a[1]), "SIG"), strings.TrimPrefix(sig, "SIG")), "line 2: the signal: %s, not %q", sig, a[1])
	r = berthRun(t, "", "--security-opt", "seccomp="+nospc, "mkdir", "/tmp/d")
	msg := strings.TrimSpace(r.Stderr[strings.LastIndex(r.Stderr, ":")+1:])
	assert.Contains(t, r.Stderr, "mkdir:", r.String())
	assert.True(t, same(a[2], msg), "line 3: what mkdir says after its name and path: %q, not %q", msg, a[2])
}

// 09-8: the breakcheck lines seccomp=unconfined brings back.
func TestExercise09_8(t *testing.T) {
	a := answer(t, "09-8", 1)
	root := breakcheckRoot(t, 0o755)
	def := verdicts(t, berthRun(t, root, "breakcheck", "-k"))
	unc := verdicts(t, berthRun(t, root, "--security-opt", "seccomp=unconfined", "breakcheck", "-k"))
	want := map[string]bool{}
	for c, v := range unc {
		if v == "allowed" && def[c] != "allowed" {
			want[c] = true
		}
	}
	assert.Equal(t, want, words(a[0]), "line 1: the checks (breakcheck -k names) allowed with seccomp=unconfined and refused without")
}

func verdicts(t *testing.T, r testenv.Result) map[string]string {
	t.Helper()
	require.Equal(t, 0, r.Code, r.String())
	out := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		if f := strings.Fields(l); len(f) >= 2 {
			out[f[0]] = strings.TrimSuffix(f[1], ":")
		}
	}
	return out
}

// 09-9: a setuid-root breakcheck run by --user 1000: its CapEff by
// default, with no-new-privileges, with --cap-drop ALL.
func TestExercise09_9(t *testing.T) {
	a := answer(t, "09-9", 3)
	root := breakcheckRoot(t, os.ModeSetuid|0o755)
	for i, flags := range [][]string{nil, {"--security-opt", "no-new-privileges"}, {"--cap-drop", "ALL"}} {
		r := berthRun(t, root, append(append([]string{"--user", "1000"}, flags...), "breakcheck", "-k", "caps")...)
		require.Equal(t, 0, r.Code, r.String())
		f := strings.Fields(r.Stdout)
		require.Len(t, f, 3, r.String())
		if f[2] == "none" { // breakcheck says "refused: none" for an empty set
			f[2] = "0000000000000000"
		}
		assert.True(t, same(a[i], f[2]), "line %d: CapEff of the setuid-root breakcheck with --user 1000 %s: %s, not %q", i+1, strings.Join(flags, " "), f[2], a[i])
	}
}

// 09-10: an allow-by-default profile: no jgt (no call is "newer than the
// profile knows" when every call is allowed), and x32 still gets ENOSYS.
func TestExercise09_10(t *testing.T) {
	a := answer(t, "09-10", 2)
	p, err := seccomp.Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno}}})
	require.NoError(t, err)
	prog := p.String()
	assert.True(t, same(a[0], yes(strings.Contains(prog, "jgt"))), "line 1: is there a jgt line (yes or no)? %s", prog)
	errno := ""
	for _, l := range strings.Split(prog, "\n") {
		if i := strings.Index(l, "ret ERRNO("); i >= 0 && !strings.Contains(l, "ERRNO(1)") {
			errno = strings.TrimSuffix(l[i+len("ret ERRNO("):], ")")
		}
	}
	assert.True(t, same(a[1], errno), "line 2: the errno an x32 call gets, as a number: %s, not %q", errno, a[1])
}

// 09-11: with --init, is PID 1's binary berth's own? Under berth run (tini,
// where the host has it) and under stage 08's run (stage 02's init).
func TestExercise09_11(t *testing.T) {
	a := answer(t, "09-11", 2)
	root := breakcheckRoot(t, 0o755)
	berthOwn := func(r testenv.Result) string {
		require.Equal(t, 0, r.Code, r.String())
		return yes(!strings.Contains(r.Stdout, "/bin/breakcheck") && !strings.Contains(r.Stdout, "/dev/init"))
	}
	r := berthRun(t, root, "--init", "breakcheck", "-k", "pid1")
	got := berthOwn(r)
	assert.True(t, same(a[0], got), "line 1: berth run --init: is /proc/1/exe a binary of berth's (yes or no)? %s, not %q (breakcheck: %q)", got, a[0], r.Stdout)
	r = testenv.Run(t, testenv.StateEnv(t), bin(t, "08-image"), "run", "--rootfs", root, "--net", "none", "--init", "breakcheck", "-k", "pid1")
	got = berthOwn(r)
	assert.True(t, same(a[1], got), "line 2: bin/08-image run --init: is /proc/1/exe a binary of berth's (yes or no)? %s, not %q (breakcheck: %q)", got, a[1], r.Stdout)
}
