package testenv

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// An Account is an unprivileged user a test creates (and removes), with
// its own home, runtime directory and, for withSubIDs, 65536 subordinate
// uids and gids: the user a rootless container runs as (stages 05, 07).
type Account struct {
	Name           string
	UID, GID       int
	Home, Runtime  string // $HOME and $XDG_RUNTIME_DIR
	SubUID, SubGID uint32 // first subordinate id (0: none)

	top string // 0755, holds the home and the binaries the user runs
}

// accountPrefix names the temporary directory of an account's home, so
// that the next run can remove what a dead one left.
const accountPrefix = "berth-user-"

// NewAccount creates the user. Names are fixed per test so that a run that
// died before its cleanup is cleaned by the next one: an existing user of
// that name is deleted first. It skips, saying why, where the tools to
// make users are missing.
func NewAccount(t testing.TB, name string, withSubIDs bool) *Account {
	t.Helper()
	RequireRoot(t)
	for _, tool := range []string{"useradd", "userdel", "usermod", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: %s not found (Debian packages passwd, util-linux)", tool)
		}
	}
	if withSubIDs {
		if _, err := exec.LookPath("newuidmap"); err != nil {
			t.Skip("skipped: newuidmap not found: apt-get install uidmap")
		}
	}
	removeAccount(t, name)

	top, err := os.MkdirTemp("", accountPrefix+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(top, 0o755); err != nil {
		t.Fatal(err)
	}
	a := &Account{Name: name, Home: filepath.Join(top, "home"), top: top}
	// -K SUB_*_COUNT=0: no automatic subordinate range, we choose it.
	mustRun(t, "useradd", "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", "-U", "-M", "-d", a.Home, "-s", "/bin/sh", name)
	t.Cleanup(func() {
		removeAccount(t, name)
		os.RemoveAll(top)
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	a.UID, _ = strconv.Atoi(u.Uid)
	a.GID, _ = strconv.Atoi(u.Gid)
	a.Runtime = filepath.Join(a.Home, "run")
	if err := os.MkdirAll(a.Runtime, 0o700); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "chown", "-R", fmt.Sprintf("%d:%d", a.UID, a.GID), a.Home)

	if withSubIDs {
		a.SubUID = freeRange(t, "/etc/subuid")
		a.SubGID = freeRange(t, "/etc/subgid")
		mustRun(t, "usermod",
			"--add-subuids", fmt.Sprintf("%d-%d", a.SubUID, a.SubUID+65535),
			"--add-subgids", fmt.Sprintf("%d-%d", a.SubGID, a.SubGID+65535), name)
	}
	return a
}

// removeAccount deletes the user, its group and its subordinate ranges
// (userdel removes those), and the home a dead run left in /tmp.
func removeAccount(t testing.TB, name string) {
	u, err := user.Lookup(name)
	if err != nil {
		return
	}
	if out, err := exec.Command("userdel", "-f", name).CombinedOutput(); err != nil {
		t.Errorf("userdel %s: %v\n%s", name, err, out)
	}
	if top := filepath.Dir(u.HomeDir); strings.HasPrefix(filepath.Base(top), accountPrefix+name+"-") {
		os.RemoveAll(top)
	}
}

// freeRange finds 65536 ids above every range in file and above 2^20.
func freeRange(t testing.TB, file string) uint32 {
	t.Helper()
	next := uint64(1 << 20)
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(p) != 3 {
			continue
		}
		start, err1 := strconv.ParseUint(p[1], 10, 32)
		count, err2 := strconv.ParseUint(p[2], 10, 32)
		if err1 == nil && err2 == nil && start+count > next {
			next = start + count
		}
	}
	next = (next + 65535) / 65536 * 65536
	if next+65536 >= uint64(1<<32-1) {
		t.Fatalf("no room for 65536 ids in %s", file)
	}
	return uint32(next)
}

// Binary is a copy of a stage binary (see Binary) that the user may run.
func (a *Account) Binary(t testing.TB, stage string) string {
	t.Helper()
	dst := filepath.Join(a.top, stage)
	if _, err := os.Stat(dst); err == nil {
		return dst
	}
	in, err := os.Open(Binary(t, stage))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// Argv runs args as the user, without any privilege and with the clean
// environment of a login (HOME, USER, PATH, XDG_RUNTIME_DIR, and
// BERTH_ROOTFS when the suite sets it); env adds to it or overrides it.
func (a *Account) Argv(env []string, args ...string) []string {
	out := []string{"setpriv", "--reuid", strconv.Itoa(a.UID), "--regid", strconv.Itoa(a.GID), "--init-groups", "--",
		"env", "-i", "HOME=" + a.Home, "USER=" + a.Name, "LOGNAME=" + a.Name,
		"PATH=/usr/local/bin:/usr/bin:/bin", "XDG_RUNTIME_DIR=" + a.Runtime}
	if rootfs := os.Getenv("BERTH_ROOTFS"); rootfs != "" {
		out = append(out, "BERTH_ROOTFS="+rootfs)
	}
	out = append(out, env...)
	return append(out, args...)
}

// Run runs a command as the user (see Argv) and returns what it printed.
func (a *Account) Run(t testing.TB, env []string, name string, args ...string) Result {
	t.Helper()
	argv := a.Argv(env, append([]string{name}, args...)...)
	return Run(t, nil, argv[0], argv[1:]...)
}

// Rootfs is a copy of the busybox tree the user owns, as a rootless
// user's own image would be.
func (a *Account) Rootfs(t testing.TB) string {
	t.Helper()
	r := CopyRootfs(t)
	mustRun(t, "chown", "-R", fmt.Sprintf("%d:%d", a.UID, a.GID), r)
	// CopyRootfs puts it in the test's temporary directories, which are
	// 0700: let the user walk through them.
	for d := filepath.Dir(r); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func mustRun(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// Berth is stage 09's berth and its monitor (see testenv.Berth), copied
// side by side where the user may run them.
func (a *Account) Berth(t testing.TB) string {
	t.Helper()
	src := Berth(t)
	dst := filepath.Join(a.top, "berth")
	if _, err := os.Stat(dst); err == nil {
		return dst
	}
	copyFile(t, filepath.Join(filepath.Dir(src), "berth-monitor"), filepath.Join(a.top, "berth-monitor"))
	copyFile(t, src, dst)
	return dst
}
