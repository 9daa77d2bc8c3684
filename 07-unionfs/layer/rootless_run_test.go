//go:build linux

package layer_test

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"berth/internal/testenv"
)

// user is an unprivileged account (testenv.Account) running 07-unionfs.
type user struct {
	*testenv.Account
	bin, store string // the binary it runs; its layer store (~/.local/share/berth/layers)
}

func newUser(t *testing.T, name string) *user {
	testenv.Rootfs(t)
	a := testenv.NewAccount(t, name, true)
	return &user{Account: a, bin: a.Binary(t, "07-unionfs"), store: filepath.Join(a.Home, ".local/share/berth/layers")}
}

func (u *user) run(t *testing.T, args ...string) testenv.Result {
	t.Helper()
	return u.Run(t, nil, u.bin, args...)
}

func (u *user) ok(t *testing.T, args ...string) string {
	t.Helper()
	r := u.run(t, args...)
	require.Equal(t, 0, r.Code, r.String())
	return r.Stdout
}

// tarOwners lists a tarball's entries as "name uid:gid".
func tarOwners(t *testing.T, path string) []string {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		out = append(out, fmt.Sprintf("%s %d:%d", h.Name, h.Uid, h.Gid))
	}
}

const learnerScript = "echo changed > /etc/motd; rm /bin/vi; rm -r /home; mkdir /home; touch /home/new"

// A rootless container (stage 05) on layers, as an unprivileged user the
// test creates: the overlay is mounted inside the container's own user
// namespace with userxattr; the kernel makes the whiteouts and marks the
// opaque directory with user.overlay.opaque; diff, commit and rm work as
// that user, and a commit carries the ids the container saw.
func TestRootlessRun(t *testing.T) {
	u := newUser(t, "berth07a")
	rootfs := u.Rootfs(t)

	t.Run("overlay in the user namespace", func(t *testing.T) {
		out := u.ok(t, "run", "--id", "r1", "--rootfs", rootfs, "sh", "-c",
			`id -u; awk '$2 == "/" {print $3}' /proc/mounts; grep -o userxattr /proc/self/mountinfo | head -n 1; cat /etc/hostname; `+learnerScript)
		assert.Equal(t, "0\noverlay\nuserxattr\nr1\n", out)

		upper := filepath.Join(u.store, "containers/r1/diff")
		var st unix.Stat_t
		require.NoError(t, unix.Lstat(filepath.Join(upper, "bin/vi"), &st))
		assert.True(t, st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0, "a whiteout: a 0/0 character device, made by the kernel in the user namespace")
		assert.EqualValues(t, u.UID, st.Uid, "owned by the user, the container's root")
		v := make([]byte, 8)
		n, err := unix.Lgetxattr(filepath.Join(upper, "home"), "user.overlay.opaque", v)
		require.NoError(t, err, "the re-created directory is opaque, in the user.* namespace")
		assert.Equal(t, "y", string(v[:n]))
		_, err = unix.Lgetxattr(filepath.Join(upper, "home"), "trusted.overlay.opaque", v)
		assert.Error(t, err, "no trusted.* xattr: only the host's root may set one")
		assert.Equal(t, "changed\n", string(must(os.ReadFile(filepath.Join(upper, "etc/motd")))))
		assert.Equal(t, "berth busybox rootfs\n", string(must(os.ReadFile(filepath.Join(rootfs, "etc/motd")))), "the lower layer is unchanged")
		assert.FileExists(t, filepath.Join(rootfs, "bin/vi"))
	})

	t.Run("diff, commit and rm as the user", func(t *testing.T) {
		assert.Equal(t, "C /bin\nD /bin/vi\nC /etc\nC /etc/motd\nC /home\nA /home/new\n", u.ok(t, "diff", "r1"))
		tarball := filepath.Join(u.Home, "r1.tar")
		u.ok(t, "commit", "r1", tarball)
		assert.Equal(t, []string{"bin/ 0:0", "bin/.wh.vi 0:0", "etc/ 0:0", "etc/motd 0:0", "home/ 0:0", "home/.wh..wh..opq 0:0", "home/new 0:0"},
			tarOwners(t, tarball), "the ids the container saw, not the user's")
		u.ok(t, "rm", "r1")
		assert.NoDirExists(t, filepath.Join(u.store, "containers/r1"))
		links, err := os.ReadDir(filepath.Join(u.store, "l"))
		require.NoError(t, err)
		assert.Empty(t, links)
	})

	t.Run("subordinate ids", func(t *testing.T) {
		// Files of ids other than the user's: the user can neither read
		// /d nor delete /d/x on the host; diff, commit and rm work inside
		// a user namespace with the container's maps.
		u.ok(t, "run", "--map-subids", "--id", "s1", "--rootfs", rootfs, "sh", "-c",
			"mkdir /d && touch /d/x && chown -R 1000:1000 /d && chmod 700 /d; touch /f && chown 7:8 /f")
		var st unix.Stat_t
		require.NoError(t, unix.Lstat(filepath.Join(u.store, "containers/s1/diff/d/x"), &st))
		assert.Equal(t, u.SubUID+1000, st.Uid, "container uid 1000 is the range's start+1000")
		assert.Equal(t, "A /d\nA /d/x\nA /f\n", u.ok(t, "diff", "s1"))
		tarball := filepath.Join(u.Home, "s1.tar")
		u.ok(t, "commit", "s1", tarball)
		assert.Equal(t, []string{"d/ 1000:1000", "d/x 1000:1000", "f 7:8"}, tarOwners(t, tarball))
		u.ok(t, "rm", "s1")
		assert.NoDirExists(t, filepath.Join(u.store, "containers/s1"))
	})

	t.Run("an image and volumes", func(t *testing.T) {
		// The image's tarballs are applied as the user (owners become
		// the user's, the container's root; the opaque mark a user.*
		// xattr); a volume's writes land in the user's directory.
		img := filepath.Join(u.Home, "img")
		top := filepath.Join(u.Home, "top")
		require.NoError(t, os.MkdirAll(img, 0o755))
		for _, f := range []string{"etc/motd", "home/.wh..wh..opq", "home/in-image", "bin/.wh.vi"} {
			require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(top, f)), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(top, f), []byte("image\n"), 0o644))
		}
		for _, c := range [][]string{
			{"tar", "-C", rootfs, "-cf", filepath.Join(img, "base.tar"), "."},
			{"tar", "-C", top, "-cf", filepath.Join(img, "top.tar"), "."},
		} {
			out, err := exec.Command(c[0], c[1:]...).CombinedOutput()
			require.NoError(t, err, "%s", out)
		}
		require.NoError(t, os.WriteFile(filepath.Join(img, "order"), []byte("base.tar\ntop.tar\n"), 0o644))
		vol := filepath.Join(u.Home, "vol")
		require.NoError(t, os.MkdirAll(vol, 0o755))
		out, err := exec.Command("chown", "-R", fmt.Sprintf("%d:%d", u.UID, u.GID), img, vol).CombinedOutput()
		require.NoError(t, err, "%s", out)

		got := u.ok(t, "run", "--id", "im", "--image", img, "-v", vol+":/data", "-v", "/etc", "sh", "-c",
			"cat /etc/motd; ls /home; ls /bin/vi 2>&1; stat -c %u:%g /etc/passwd; echo w > /data/w; echo x > /etc/x")
		assert.Equal(t, "image\nin-image\nls: /bin/vi: No such file or directory\n0:0\n", got)
		assert.Equal(t, "w\n", string(must(os.ReadFile(filepath.Join(vol, "w")))))
		assert.Equal(t, "", u.ok(t, "diff", "im"), "volume writes are not changes")
		u.ok(t, "rm", "im")
	})

	t.Run("the shared busybox tree", func(t *testing.T) {
		// BERTH_ROOTFS (or the default) is root's tree: read-only to the
		// user, a fine lower layer all the same.
		assert.Equal(t, "overlay\n", u.ok(t, "run", "--rm", "--net", "none", "sh", "-c", `awk '$2 == "/" {print $3}' /proc/mounts`))
	})

	t.Run("a killed runtime is collected by rm", func(t *testing.T) {
		argv := u.Argv(nil, u.bin, "run", "--id", "k1", "--rootfs", rootfs, "sleep", "60")
		bg := testenv.Start(t, nil, argv[0], argv[1:]...)
		pid := testenv.ContainerPid(t, filepath.Join(u.Runtime, "berth"), "k1")
		require.NoError(t, bg.Cmd.Process.Kill())
		bg.Wait(t)
		testenv.WaitGone(t, pid) // the container dies with its runtime, and its overlay with it
		u.ok(t, "rm", "k1")
		assert.NoDirExists(t, filepath.Join(u.store, "containers/k1"))
		assert.NoDirExists(t, filepath.Join(u.Runtime, "berth/k1"), "its state collected")
	})

	t.Run("nothing left behind", func(t *testing.T) {
		for _, d := range []string{filepath.Join(u.store, "containers"), filepath.Join(u.Runtime, "berth")} {
			entries, err := os.ReadDir(d)
			require.NoError(t, err)
			assert.Empty(t, entries, d)
		}
	})
}

// Where overlay cannot mount in the user namespace, here because the data
// root is itself on overlay (an upper directory cannot be), the copy driver
// takes over with one line and passes the same checks.
func TestRootlessFallback(t *testing.T) {
	u := newUser(t, "berth07b")
	rootfs := u.Rootfs(t)
	d := filepath.Join(u.Home, "ovl")
	for _, s := range []string{"l", "u", "w", "m"} {
		require.NoError(t, os.MkdirAll(filepath.Join(d, s), 0o755))
	}
	require.NoError(t, os.Chown(filepath.Join(d, "u"), u.UID, u.GID))
	m := filepath.Join(d, "m")
	require.NoError(t, unix.Mount("overlay", m, "overlay", 0,
		"lowerdir="+filepath.Join(d, "l")+",upperdir="+filepath.Join(d, "u")+",workdir="+filepath.Join(d, "w")))
	t.Cleanup(func() { assert.NoError(t, unix.Unmount(m, unix.MNT_DETACH)) })

	r := u.run(t, "run", "--data-root", m, "--id", "fb", "--rootfs", rootfs, "sh", "-c", learnerScript+"; echo ran")
	require.Equal(t, 0, r.Code, r.String())
	assert.True(t, strings.HasSuffix(r.Stdout, "ran\n"), r.Stdout)
	assert.Contains(t, string(must(os.ReadFile(filepath.Join(m, "layers/containers/fb/layer.json")))), `"driver": "copy"`)
	assert.Regexp(t, `^07-unionfs: overlay does not mount in a user namespace on .*/m/layers \(mount: invalid argument\): using the copy driver \(each container gets a full copy of its layers\)\n$`, r.Stderr)
	assert.Equal(t, "C /bin\nD /bin/vi\nC /etc\nC /etc/motd\nC /home\nA /home/new\n", u.ok(t, "diff", "--data-root", m, "fb"))
	tarball := filepath.Join(u.Home, "fb.tar")
	u.ok(t, "commit", "--data-root", m, "fb", tarball)
	assert.Equal(t, []string{"bin/ 0:0", "bin/.wh.vi 0:0", "etc/ 0:0", "etc/motd 0:0", "home/ 0:0", "home/new 0:0"}, tarOwners(t, tarball))
	u.ok(t, "rm", "--data-root", m, "fb")
	assert.NoDirExists(t, filepath.Join(m, "layers/containers/fb"))

	// The shared tree, copied by the user: what the user may not read
	// (its /root is 0700) stays empty, and the owners the copy could not
	// keep are no change.
	r = u.run(t, "run", "--data-root", m, "--id", "fb2", "--rootfs", testenv.Rootfs(t), "sh", "-c", "echo x > /etc/motd")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "C /etc\nC /etc/motd\n", u.ok(t, "diff", "--data-root", m, "fb2"))
	u.ok(t, "rm", "--data-root", m, "fb2")

	out, err := exec.Command("find", filepath.Join(m, "layers/containers"), "-mindepth", "1").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Empty(t, string(out))
}

// tmpfs takes user.* xattrs only from Linux 6.6: before, overlay in a user
// namespace mounts on it but cannot mark an opaque directory (`rm -r /home;
// mkdir /home` fails with EIO, seen on 6.1), so the copy driver is used;
// from 6.6 on, overlay.
func TestRootlessOnTmpfs(t *testing.T) {
	u := newUser(t, "berth07c")
	rootfs := u.Rootfs(t)
	m := filepath.Join(u.Home, "tmpfs")
	require.NoError(t, os.Mkdir(m, 0o755))
	require.NoError(t, unix.Mount("tmpfs", m, "tmpfs", 0, fmt.Sprintf("size=64m,mode=0755,uid=%d,gid=%d", u.UID, u.GID)))
	t.Cleanup(func() { assert.NoError(t, unix.Unmount(m, unix.MNT_DETACH)) })

	r := u.run(t, "run", "--data-root", m, "--id", "tm", "--rootfs", rootfs, "sh", "-c", learnerScript)
	require.Equal(t, 0, r.Code, r.String())
	if kernelAtLeast(t, 6, 6) {
		assert.Empty(t, r.Stderr)
		assert.Contains(t, string(must(os.ReadFile(filepath.Join(m, "layers/containers/tm/layer.json")))), `"driver": "overlay"`)
	} else {
		assert.Regexp(t, `^07-unionfs: overlay does not mount in a user namespace on .*/tmpfs/layers \(no user\.\* extended attributes: operation not supported\): using the copy driver`, r.Stderr)
	}
	assert.Equal(t, "C /bin\nD /bin/vi\nC /etc\nC /etc/motd\nC /home\nA /home/new\n", u.ok(t, "diff", "--data-root", m, "tm"))
	u.ok(t, "rm", "--data-root", m, "tm")
}

// kernelAtLeast: is the running kernel major.minor or later?
func kernelAtLeast(t *testing.T, major, minor int) bool {
	var uts unix.Utsname
	require.NoError(t, unix.Uname(&uts))
	var ma, mi int
	_, err := fmt.Sscanf(unix.ByteSliceToString(uts.Release[:]), "%d.%d", &ma, &mi)
	require.NoError(t, err)
	return ma > major || ma == major && mi >= minor
}
