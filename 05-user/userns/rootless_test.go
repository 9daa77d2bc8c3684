//go:build linux

package userns_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// The learner's checks of a rootless container, run as an unprivileged
// user the test creates: no sudo, uid 0 inside, the user's uid outside.
func TestRootless(t *testing.T) {
	testenv.RequireRoot(t)
	a := newAccount(t, "berth05a", true)
	rootfs := a.Rootfs(t)
	fullCaps := fullCapSet(t)

	t.Run("the harness has no privilege", func(t *testing.T) {
		argv := a.Argv(nil, "sh", "-c", "id -u; grep CapEff /proc/self/status")
		r := testenv.Run(t, nil, argv[0], argv[1:]...)
		require.Equal(t, 0, r.Code, r.String())
		assert.Equal(t, fmt.Sprintf("%d\nCapEff:\t0000000000000000\n", a.UID), r.Stdout)
	})

	t.Run("root inside with every capability", func(t *testing.T) {
		r := a.berth(t, nil, "run", "--rootfs", rootfs, "sh", "-c", "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; grep CapEff /proc/self/status")
		require.Equal(t, 0, r.Code, r.String())
		assert.Equal(t, []string{"0", "0",
			"0", strconv.Itoa(a.UID), "1", // without a flag: --map-root-user
			"0", strconv.Itoa(a.GID), "1",
			"deny",
			"CapEff:", fullCaps}, strings.Fields(r.Stdout))
	})

	t.Run("the host sees the user's uid", func(t *testing.T) {
		stop := filepath.Join(rootfs, "tmp", "stop")
		argv := a.Argv(nil, a.Bin, "run", "--id", "seen", "--rootfs", rootfs, "sh", "-c", "until [ -e /tmp/stop ]; do sleep 0.05; done")
		bg := testenv.Start(t, nil, argv[0], argv[1:]...)
		stateRoot := filepath.Join(a.Runtime, "berth")
		pid := testenv.ContainerPid(t, stateRoot, "seen")
		out, err := exec.Command("ps", "-o", "uid=", "-p", strconv.Itoa(pid)).Output()
		require.NoError(t, err)
		assert.Equal(t, strconv.Itoa(a.UID), strings.TrimSpace(string(out)), "ps -o uid shows the container's root as the user")
		assert.DirExists(t, filepath.Join(stateRoot, "seen"), "rootless state lives under $XDG_RUNTIME_DIR/berth")
		require.NoError(t, os.WriteFile(stop, nil, 0o644))
		r := bg.Wait(t)
		require.Equal(t, 0, r.Code, r.String())
		assert.NoDirExists(t, filepath.Join(stateRoot, "seen"), "state removed on exit")
	})

	t.Run("a terminal from the container's own devpts", func(t *testing.T) {
		// The init opens it after executing itself again as the mapped
		// root (see reexecAsRoot), and sends the master to the runtime.
		r := a.berth(t, nil, "run", "-t", "--rootfs", rootfs, "sh", "-c", "tty; test /dev/console -ef /dev/pts/0 && echo console-is-pts0")
		require.Equal(t, 0, r.Code, r.String())
		assert.Equal(t, "/dev/pts/0\r\nconsole-is-pts0\r\n", r.Stdout) // the pty's line discipline writes \r\n
	})

	t.Run("range map through newuidmap", func(t *testing.T) {
		// container 0 is the user, container N (1..65535) is start+N:
		// 65536 ids in all.
		r := a.berth(t, nil, "run", "--map-subids", "--rootfs", rootfs, "sh", "-c",
			"cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; "+
				"rm -f /tmp/f /tmp/g; touch /tmp/f /tmp/g && chown 1000:1000 /tmp/f && chown 65535:65535 /tmp/g && "+
				"chown 65536 /tmp/g 2>&1; id")
		require.Equal(t, 0, r.Code, r.String())
		want := []string{
			"0", strconv.Itoa(a.UID), "1", "1", strconv.Itoa(int(a.SubUID) + 1), "65535",
			"0", strconv.Itoa(a.GID), "1", "1", strconv.Itoa(int(a.SubGID) + 1), "65535",
			"allow",
		}
		require.GreaterOrEqual(t, len(strings.Fields(r.Stdout)), len(want), r.String())
		assert.Equal(t, want, strings.Fields(r.Stdout)[:len(want)])
		assert.Contains(t, r.Stdout, "chown: /tmp/g: Invalid argument")
		assertOwner(t, filepath.Join(rootfs, "tmp", "f"), a.SubUID+1000, a.SubGID+1000)
		assertOwner(t, filepath.Join(rootfs, "tmp", "g"), a.SubUID+65535, a.SubGID+65535)
	})

	t.Run("a file created inside is the user's outside", func(t *testing.T) {
		r := a.berth(t, nil, "run", "--rootfs", rootfs, "sh", "-c", "echo hi > /root/made-inside; ls -ln /root/made-inside")
		require.Equal(t, 0, r.Code, r.String())
		assert.Regexp(t, `^-rw-r--r-- +1 0 +0 `, r.Stdout, "root's file inside")
		assertOwner(t, filepath.Join(rootfs, "root", "made-inside"), uint32(a.UID), uint32(a.GID))
	})

	t.Run("the host's hostname is unchanged", func(t *testing.T) {
		before, err := os.Hostname()
		require.NoError(t, err)
		r := a.berth(t, nil, "run", "--rootfs", rootfs, "sh", "-c", "hostname x && hostname")
		require.Equal(t, 0, r.Code, r.String())
		assert.Equal(t, "x\n", r.Stdout)
		after, err := os.Hostname()
		require.NoError(t, err)
		assert.Equal(t, before, after)
	})

	t.Run("what root in a user namespace may not do", func(t *testing.T) {
		// mount and hostname act on the container's own namespaces and
		// work; the clock, device nodes and kernel modules belong to the
		// whole machine and do not.
		script := "mount -t tmpfs t /mnt && echo mounted; " +
			"date -s 2000-01-01 2>&1 >/dev/null; [ $(date +%Y) != 2000 ] && echo clock unchanged; " +
			"mknod /tmp/null c 1 3 2>&1 || echo no mknod; " +
			"(echo 3 > /proc/sys/vm/drop_caches) 2>&1 || echo no sysctl"
		if _, err := os.Stat("/proc/modules"); err == nil {
			script += "; echo x > /tmp/m.ko; insmod /tmp/m.ko 2>&1 || echo no module"
		} else {
			t.Log("this kernel has no module support (/proc/modules is missing): module loading not checked")
		}
		require.NoError(t, os.MkdirAll(filepath.Join(rootfs, "mnt"), 0o755))
		r := a.berth(t, nil, "run", "--rootfs", rootfs, "sh", "-c", script)
		require.Equal(t, 0, r.Code, r.String())
		assert.Contains(t, r.Stdout, "mounted\n")
		assert.Contains(t, r.Stdout, "date: can't set date: Operation not permitted\nclock unchanged\n")
		assert.Contains(t, r.Stdout, "mknod: /tmp/null: Operation not permitted\nno mknod\n")
		assert.Contains(t, r.Stdout, "can't create /proc/sys/vm/drop_caches: Permission denied\nno sysctl\n")
		if strings.Contains(script, "insmod") {
			assert.Contains(t, r.Stdout, "Operation not permitted\nno module\n")
		}
	})

	t.Run("host files of unmapped users", func(t *testing.T) {
		// A host directory of root's, with a file only root may read,
		// bind-mounted into the container (in a private mount namespace
		// of the test, so the host's mount table does not change).
		hostDir := t.TempDir()
		require.NoError(t, os.Chmod(hostDir, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(hostDir, "secret"), []byte("root only\n"), 0o600))
		// And one of the user's, where the container's root may write.
		userDir := t.TempDir()
		sh(t, "chown", fmt.Sprintf("%d:%d", a.UID, a.GID), userDir)
		mnt, umnt := filepath.Join(rootfs, "hostdir"), filepath.Join(rootfs, "userdir")
		require.NoError(t, os.MkdirAll(mnt, 0o755))
		require.NoError(t, os.MkdirAll(umnt, 0o755))
		argv := append([]string{"unshare", "-m", "--", "sh", "-c", `mount --bind "$1" "$2" && mount --bind "$3" "$4" && shift 4 && exec "$@"`, "sh", hostDir, mnt, userDir, umnt},
			a.Argv(nil, a.Bin, "run", "--rootfs", rootfs, "sh", "-c",
				"ls -ln /hostdir/secret; cat /hostdir/secret; touch /hostdir/new; echo x > /userdir/new && ls -ln /userdir/new")...)
		r := testenv.Run(t, nil, argv[0], argv[1:]...)
		require.Equal(t, 0, r.Code, r.String())
		assert.Regexp(t, `-rw------- +1 65534 +65534 .*secret`, r.Stdout, "unmapped root shows as nobody")
		assert.Contains(t, r.Stderr, "cat: can't open '/hostdir/secret': Permission denied")
		assert.Contains(t, r.Stderr, "touch: /hostdir/new: Permission denied")
		assert.NoFileExists(t, filepath.Join(hostDir, "new"))
		assert.Regexp(t, `-rw-r--r-- +1 0 +0 .*/userdir/new`, r.Stdout, "root's file inside")
		assertOwner(t, filepath.Join(userDir, "new"), uint32(a.UID), uint32(a.GID))
	})

	t.Run("default rootfs", func(t *testing.T) {
		shared := testenv.Rootfs(t)
		r := a.berth(t, nil, "run", "sh", "-c", "ls /bin/busybox && mount | grep ' /tmp '")
		if unixAccessAs(a, shared) {
			require.Equal(t, 0, r.Code, r.String())
			assert.Contains(t, r.Stdout, "tmpfs on /tmp type tmpfs", "a private /tmp over the shared tree")
		} else {
			require.Equal(t, 125, r.Code, r.String())
			assert.Contains(t, r.Stderr, "the shared busybox tree "+shared+" is not readable by uid")
		}

		// The user's own tree in ~/.local/share/berth/busybox wins.
		own := filepath.Join(a.Home, ".local", "share", "berth", "busybox")
		require.NoError(t, os.MkdirAll(filepath.Dir(own), 0o755))
		sh(t, "cp", "-a", rootfs, own)
		require.NoError(t, os.WriteFile(filepath.Join(own, "MINE"), nil, 0o644))
		sh(t, "chown", "-R", fmt.Sprintf("%d:%d", a.UID, a.GID), filepath.Join(a.Home, ".local"))
		// (with no BERTH_ROOTFS, which make test sets, to choose for it)
		r = a.berth(t, []string{"BERTH_ROOTFS="}, "run", "ls", "/MINE")
		require.Equal(t, 0, r.Code, r.String())
		require.NoError(t, os.RemoveAll(filepath.Join(a.Home, ".local")))
	})

	t.Run("a killed runtime is collected by the next run", func(t *testing.T) {
		argv := a.Argv(nil, a.Bin, "run", "--id", "killed", "--rootfs", rootfs, "sleep", "1000")
		bg := testenv.Start(t, nil, argv[0], argv[1:]...)
		stateRoot := filepath.Join(a.Runtime, "berth")
		pid := testenv.ContainerPid(t, stateRoot, "killed")
		require.NoError(t, bg.Cmd.Process.Signal(syscall.SIGKILL))
		testenv.WaitGone(t, pid) // the container dies with its runtime
		bg.Wait(t)
		assert.DirExists(t, filepath.Join(stateRoot, "killed"), "left behind by the killed runtime")
		r := a.berth(t, nil, "run", "--rootfs", rootfs, "true")
		require.Equal(t, 0, r.Code, r.String())
		assert.NoDirExists(t, filepath.Join(stateRoot, "killed"), "collected")
	})

	t.Run("nothing left behind", func(t *testing.T) {
		entries, err := os.ReadDir(filepath.Join(a.Runtime, "berth"))
		require.NoError(t, err)
		assert.Empty(t, entries)
	})
}

// Every bad input gets one line and exit 125, and leaves no state.
func TestRootlessBadInput(t *testing.T) {
	testenv.RequireRoot(t)
	a := newAccount(t, "berth05b", false) // no subordinate ids
	rootfs := a.Rootfs(t)
	private := testenv.CopyRootfs(t) // root's, 0700: not for the user
	require.NoError(t, os.Chmod(private, 0o700))
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		err  string
	}{
		{"no subordinate ids", nil, []string{"--map-subids"},
			"--map-subids: user berth05b (uid " + strconv.Itoa(a.UID) + ") has no subordinate ids in /etc/subuid and /etc/subgid"},
		{"newuidmap missing", []string{"PATH=/nonexistent"}, []string{"--uidmap", "0:" + strconv.Itoa(a.UID) + ":1", "--uidmap", "1:2000000:10"},
			"newuidmap not found in $PATH: mapping more than your own id without root needs it: install the uidmap package"},
		{"overlapping maps", nil, []string{"--uidmap", "0:" + strconv.Itoa(a.UID) + ":1", "--uidmap", "0:2000000:10"},
			"uid maps 0:" + strconv.Itoa(a.UID) + ":1 and 0:2000000:10 overlap inside the container"},
		{"root not mapped to the user", nil, []string{"--uidmap", "0:2000000:65536"},
			"without root, the uid map must map container 0 to your uid " + strconv.Itoa(a.UID)},
		{"malformed map", nil, []string{"--uidmap", "0:1"},
			`invalid --uidmap: "0:1" is not CONTAINER:HOST:SIZE`},
		{"two modes", nil, []string{"--map-root-user", "--map-subids"},
			"choose one of --map-root-user, --map-subids and --uidmap/--gidmap"},
		{"unreadable rootfs", nil, []string{"--rootfs", private},
			"rootfs " + private + " is not readable by uid " + strconv.Itoa(a.UID)},
		{"bridge network", nil, []string{"--net", "bridge"},
			"--net=bridge needs root (it changes the host's network); without root use --net=none or --net=slirp4netns"},
		{"published port", nil, []string{"-p", "8080:80"},
			"-p needs root: published ports are nftables rules on the host's network"},
		{"unknown network", nil, []string{"--net", "carrier-pigeon"},
			`unknown network mode --net "carrier-pigeon"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if !contains(args, "--rootfs") {
				args = append(args, "--rootfs", rootfs)
			}
			r := a.berth(t, tc.env, append(append([]string{"run"}, args...), "true")...)
			assert.Equal(t, 125, r.Code, r.String())
			assert.Equal(t, "05-user: ", r.Stderr[:min(9, len(r.Stderr))], r.String())
			assert.Contains(t, r.Stderr, tc.err)
			assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), "one line: %q", r.Stderr)
			entries, _ := os.ReadDir(filepath.Join(a.Runtime, "berth"))
			assert.Empty(t, entries, "no state left")
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func assertOwner(t *testing.T, path string, uid, gid uint32) {
	t.Helper()
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(path, &st))
	assert.Equal(t, uid, st.Uid, "owner of %s on the host", path)
	assert.Equal(t, gid, st.Gid, "group of %s on the host", path)
}

// fullCapSet is CapEff of a process holding every capability this kernel
// knows, as /proc/PID/status prints it.
func fullCapSet(t *testing.T) string {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	require.NoError(t, err)
	last, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	return fmt.Sprintf("%016x", uint64(1)<<(last+1)-1)
}

// unixAccessAs: may the user read and enter dir?
func unixAccessAs(a *account, dir string) bool {
	argv := a.Argv(nil, "test", "-r", dir, "-a", "-x", dir)
	return exec.Command(argv[0], argv[1:]...).Run() == nil
}
