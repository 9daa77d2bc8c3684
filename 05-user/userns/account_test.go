//go:build linux

package userns_test

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

	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// An account is an unprivileged user the test creates (and removes), with
// its own home, runtime directory, a copy of the binary it can execute and,
// for withSubIDs, 65536 subordinate uids and gids.
type account struct {
	Name           string
	UID, GID       int
	Home, Runtime  string // $HOME and $XDG_RUNTIME_DIR
	SubUID, SubGID uint32 // first subordinate id (0: none)
	Bin            string
}

// newAccount creates the user. The names are fixed so that a run that died
// before its cleanup is cleaned by the next one: an existing user of that
// name is deleted first.
func newAccount(t *testing.T, name string, withSubIDs bool) *account {
	t.Helper()
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

	top, err := os.MkdirTemp("", "berth05-"+name+"-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(top, 0o755))
	a := &account{Name: name, Home: filepath.Join(top, "home")}
	// -K SUB_*_COUNT=0: no automatic subordinate range, we choose it.
	sh(t, "useradd", "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", "-U", "-M", "-d", a.Home, "-s", "/bin/sh", name)
	t.Cleanup(func() {
		removeAccount(t, name)
		os.RemoveAll(top)
	})
	u, err := user.Lookup(name)
	require.NoError(t, err)
	a.UID, _ = strconv.Atoi(u.Uid)
	a.GID, _ = strconv.Atoi(u.Gid)
	a.Runtime = filepath.Join(a.Home, "run")
	require.NoError(t, os.MkdirAll(a.Runtime, 0o700))
	sh(t, "chown", "-R", fmt.Sprintf("%d:%d", a.UID, a.GID), a.Home)

	if withSubIDs {
		a.SubUID = freeRange(t, "/etc/subuid")
		a.SubGID = freeRange(t, "/etc/subgid")
		sh(t, "usermod",
			"--add-subuids", fmt.Sprintf("%d-%d", a.SubUID, a.SubUID+65535),
			"--add-subgids", fmt.Sprintf("%d-%d", a.SubGID, a.SubGID+65535), name)
	}

	// The test binary lives in a directory only root may enter.
	a.Bin = filepath.Join(top, "05-user")
	copyFile(t, testenv.Binary(t, "05-user"), a.Bin, 0o755)
	return a
}

// removeAccount deletes the user, its group and its subordinate ranges
// (userdel removes those), and the home a dead run left in /tmp.
func removeAccount(t *testing.T, name string) {
	u, err := user.Lookup(name)
	if err != nil {
		return
	}
	if out, err := exec.Command("userdel", "-f", name).CombinedOutput(); err != nil {
		t.Errorf("userdel %s: %v\n%s", name, err, out)
	}
	if top := filepath.Dir(u.HomeDir); strings.HasPrefix(filepath.Base(top), "berth05-"+name+"-") {
		os.RemoveAll(top)
	}
}

// freeRange finds 65536 ids above every range in file and above 2^20.
func freeRange(t *testing.T, file string) uint32 {
	t.Helper()
	next := uint64(1 << 20)
	f, err := os.Open(file)
	require.NoError(t, err)
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
	require.Less(t, next+65536, uint64(1<<32-1), "no room in %s", file)
	return uint32(next)
}

// argv runs args as the user, without any privilege and with a clean
// environment of a login (HOME, USER, PATH, XDG_RUNTIME_DIR); env adds to
// it or overrides it.
func (a *account) argv(env []string, args ...string) []string {
	out := []string{"setpriv", "--reuid", strconv.Itoa(a.UID), "--regid", strconv.Itoa(a.GID), "--init-groups", "--",
		"env", "-i", "HOME=" + a.Home, "USER=" + a.Name, "LOGNAME=" + a.Name,
		"PATH=/usr/local/bin:/usr/bin:/bin", "XDG_RUNTIME_DIR=" + a.Runtime}
	if rootfs := os.Getenv("BERTH_ROOTFS"); rootfs != "" {
		out = append(out, "BERTH_ROOTFS="+rootfs)
	}
	out = append(out, env...)
	return append(out, args...)
}

// berth runs the stage binary as the user.
func (a *account) berth(t *testing.T, env []string, args ...string) testenv.Result {
	t.Helper()
	argv := a.argv(env, append([]string{a.Bin}, args...)...)
	return testenv.Run(t, nil, argv[0], argv[1:]...)
}

// rootfs is a copy of the busybox tree the user owns, as a rootless user's
// own image would be.
func (a *account) rootfs(t *testing.T) string {
	t.Helper()
	r := testenv.CopyRootfs(t)
	sh(t, "chown", "-R", fmt.Sprintf("%d:%d", a.UID, a.GID), r)
	// CopyRootfs puts it in the test's temporary directories, which are
	// 0700: let the user walk through them.
	for d := filepath.Dir(r); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		require.NoError(t, os.Chmod(d, 0o711))
	}
	return r
}

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s\n%s", name, strings.Join(args, " "), out)
	return string(out)
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}
