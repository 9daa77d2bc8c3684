//go:build exercise && linux

package exercises

import (
	"archive/tar"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// layers is a check's data root (its own layer store) for stage 07.
func layersOf(env []string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "BERTH_DATA_ROOT="); ok {
			return filepath.Join(v, "layers")
		}
	}
	return "/var/lib/berth/layers"
}

// 07-1: each container's writes go to its own layer; the layers below
// never change.
func TestExercise07_1(t *testing.T) {
	a := answer(t, "07-1", 2)
	b := bin(t, "07-unionfs")
	env := testenv.StateEnv(t)
	lower := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(lower, "motd"), []byte("the layer's\n"), 0o644))
	stack := lower + ":" + testenv.Rootfs(t)
	for _, id := range []string{"one", "two"} {
		r := testenv.Run(t, env, b, "run", "--id", id, "--net", "none", "--layers", stack, "sh", "-c", "echo "+id+" > /motd")
		require.Equal(t, 0, r.Code, r.String())
	}
	copies, _ := filepath.Glob(filepath.Join(layersOf(env), "containers", "*", "diff", "motd"))
	lowerNow, err := os.ReadFile(filepath.Join(lower, "motd"))
	require.NoError(t, err)
	changed := "no"
	if string(lowerNow) != "the layer's\n" {
		changed = "yes"
	}
	for _, id := range []string{"one", "two"} {
		testenv.Run(t, env, b, "rm", id)
	}
	assert.True(t, same(a[0], fmt.Sprint(len(copies))), "line 1: how many copies of /motd the containers' diff directories hold: %d, not %q", len(copies), a[0])
	assert.True(t, same(a[1], changed), "line 2: did the --layers directory's file change (yes or no)? %s, not %q", changed, a[1])
}

// inMountNS runs a shell script as root in a mount namespace of its own,
// so that nothing it mounts outlives it.
func inMountNS(t *testing.T, script string, args ...string) testenv.Result {
	t.Helper()
	return testenv.Run(t, nil, "unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", script, "sh"}, args...)...)
}

// 07-2: trusted.overlay.opaque hides a lower directory; apply never lets a
// tarball set it.
func TestExercise07_2(t *testing.T) {
	a := answer(t, "07-2", 2)
	b := bin(t, "07-unionfs")
	d := t.TempDir()
	r := inMountNS(t, `cd "$1" && mkdir -p l/dir u/dir w m && touch l/dir/from-lower && setfattr -n trusted.overlay.opaque -v y u/dir &&
		mount -t overlay overlay -o lowerdir=l,upperdir=u,workdir=w m && ls -A m/dir | wc -l`, d)
	require.Equal(t, 0, r.Code, r.String())
	shows := "yes"
	if strings.TrimSpace(r.Stdout) == "0" {
		shows = "no"
	}
	r = testenv.Run(t, nil, "sh", "-c", `cd "$1" && mkdir -p t/dir && setfattr -n trusted.overlay.opaque -v y t/dir &&
		tar --xattrs --xattrs-include='trusted.*' -C t -cf x.tar dir && tar --xattrs --xattrs-include='trusted.*' -tvvf x.tar`, "sh", d)
	require.Equal(t, 0, r.Code, r.String())
	require.Contains(t, r.Stdout, "trusted.overlay.opaque", "the tarball carries the xattr")
	r = testenv.Run(t, nil, b, "apply", filepath.Join(d, "x.tar"), filepath.Join(d, "layer"))
	require.Equal(t, 0, r.Code, r.String())
	r = testenv.Run(t, nil, "getfattr", "--absolute-names", "-d", "-m", "-", filepath.Join(d, "layer", "dir"))
	shown := strings.TrimSpace(r.Stdout)
	require.NotContains(t, shown, "trusted.overlay", "apply never sets overlay's xattrs from a tarball")
	names := "none"
	if shown != "" {
		names = shown
	}
	assert.True(t, same(a[0], shows), "line 1: does the lower's file show through the opaque directory (yes or no)? %s, not %q", shows, a[0])
	assert.True(t, same(a[1], names), "line 2: what getfattr shows on the applied directory (none, if nothing): %s, not %q", names, a[1])
}

// 07-3: with redirect_dir=on, a renamed lower directory becomes a redirect
// xattr, which no OCI tarball can carry.
func TestExercise07_3(t *testing.T) {
	a := answer(t, "07-3", 1)
	d := t.TempDir()
	r := inMountNS(t, `cd "$1" && mkdir -p l/a u w m && touch l/a/f &&
		mount -t overlay overlay -o lowerdir=l,upperdir=u,workdir=w,redirect_dir=on m && mv m/a m/b && getfattr --absolute-names -d -m - u/b`, d)
	require.Equal(t, 0, r.Code, r.String())
	assert.Contains(t, r.Stdout, "trusted.overlay.redirect", r.String())
	assert.True(t, same(strings.SplitN(a[0], "=", 2)[0], "trusted.overlay.redirect"), "line 1: the xattr the rename leaves on the upper directory: not %q", a[0])
}

// deepLayer writes a layer of n nested directories, a file in each.
func deepLayer(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	w := tar.NewWriter(f)
	p := ""
	for i := 0; i < n; i++ {
		p = strings.TrimPrefix(p+"/d", "/")
		require.NoError(t, w.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: 0o755}))
		require.NoError(t, w.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p + "/f", Mode: 0o644, Size: 1}))
		_, err := w.Write([]byte("x"))
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
	require.NoError(t, f.Close())
}

// 07-4: the walker's cache keeps apply's openat calls linear in the depth.
func TestExercise07_4(t *testing.T) {
	a := answer(t, "07-4", 2)
	b := bin(t, "07-unionfs")
	if _, err := exec.LookPath("strace"); err != nil {
		t.Fatal("strace is not installed: sudo make setup (or apt-get install strace)")
	}
	d := t.TempDir()
	count := func(n int) int {
		layer := filepath.Join(d, fmt.Sprintf("deep%d.tar", n))
		deepLayer(t, layer, n)
		trace := filepath.Join(d, fmt.Sprintf("trace%d", n))
		r := testenv.Run(t, nil, "strace", "-f", "-qq", "-e", "trace=openat,openat2", "-o", trace, b, "apply", layer, filepath.Join(d, fmt.Sprintf("out%d", n)))
		require.Equal(t, 0, r.Code, r.String())
		out, err := os.ReadFile(trace)
		require.NoError(t, err)
		return strings.Count(string(out), "\n")
	}
	c100, c200 := count(100), count(200)
	require.Less(t, float64(c200), 2.5*float64(c100), "with the walker's cache back, openat calls grow with the depth, not its square: %d at 100 levels, %d at 200", c100, c200)
	assert.True(t, same(a[0], "linear"), "line 1: how the openat calls grow with the depth, with the cache (linear or quadratic): not %q", a[0])
	assert.True(t, same(a[1], "quadratic"), "line 2: and without it: not %q", a[1])
}

// 07-5: overlay in a user namespace marks with user.overlay.*; trusted.*
// needs CAP_SYS_ADMIN in the initial user namespace.
func TestExercise07_5(t *testing.T) {
	a := answer(t, "07-5", 2)
	u := testenv.NewAccount(t, "berthex", false)
	d := filepath.Join(u.Home, "ovl")
	r := u.Run(t, nil, "sh", "-c", `mkdir -p "$1" && cd "$1" && mkdir -p l/dir u w m && touch l/dir/f &&
		unshare -Urm sh -c 'mount -t overlay overlay -o lowerdir=l,upperdir=u,workdir=w,userxattr m && rm -r m/dir && mkdir m/dir && getfattr --absolute-names -d -m - u/dir'`, "sh", d)
	require.Equal(t, 0, r.Code, r.String())
	assert.Contains(t, r.Stdout, "user.overlay.opaque", r.String())
	assert.True(t, same(strings.SplitN(a[0], "=", 2)[0], "user.overlay.opaque"), "line 1: the xattr the re-created directory gets: not %q", a[0])
	assert.True(t, same(a[1], "CAP_SYS_ADMIN"), "line 2: the capability trusted.* needs, in the initial user namespace (xattr(7)): not %q", a[1])
}

// 07-6: a layer may hold files of subordinate ids, which the user cannot
// remove; rm does it in a user namespace with the container's maps.
func TestExercise07_6(t *testing.T) {
	a := answer(t, "07-6", 2)
	bin(t, "07-unionfs")
	u := testenv.NewAccount(t, "berthex", true)
	b := u.Binary(t, "07-unionfs")
	tree := u.Rootfs(t)
	r := u.Run(t, nil, b, "run", "--id", "ex076", "--map-subids", "--rootfs", tree, "sh", "-c", "mkdir /d && chown 1000 /d && chmod 700 /d && touch /d/x")
	require.Equal(t, 0, r.Code, r.String())
	layer := filepath.Join(u.Home, ".local", "share", "berth", "layers", "containers", "ex076")
	var st syscall.Stat_t
	require.NoError(t, syscall.Lstat(filepath.Join(layer, "diff", "d"), &st))
	want := int64(st.Uid) - int64(u.SubUID) + 200000
	// Only diff/d: an rm -rf of the whole layer would also take its
	// record (layer.json, the user's), without which 07-unionfs rm no
	// longer knows the container's maps.
	rm := u.Run(t, nil, "rm", "-rf", filepath.Join(layer, "diff", "d"))
	require.NotEqual(t, 0, rm.Code, "the user cannot remove diff/d with rm -rf: %s", rm)
	r = u.Run(t, nil, b, "rm", "ex076")
	require.Equal(t, 0, r.Code, r.String())
	_, err := os.Stat(layer)
	require.True(t, os.IsNotExist(err), "07-unionfs rm removes it")
	assert.True(t, same(a[0], fmt.Sprint(want)), "line 1: the owner of diff/d on the host, for the chapter's berthuser (range 200000-265535): %d, not %q", want, a[0])
	assert.True(t, same(a[1], "no"), "line 2: can the user remove diff/d with rm -rf (yes or no)? not %q", a[1])
}

// evilLayer is the layer of "A name is not a file": d/ of mode 4777, then
// d a symlink to the host file.
func evilLayer(t *testing.T, dir, hostFile string) string {
	t.Helper()
	p := filepath.Join(dir, "evil.tar")
	f, err := os.Create(p)
	require.NoError(t, err)
	w := tar.NewWriter(f)
	require.NoError(t, w.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "d/", Mode: 0o4777}))
	require.NoError(t, w.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "d", Linkname: hostFile, Mode: 0o777}))
	require.NoError(t, w.Close())
	require.NoError(t, f.Close())
	return p
}

// 07-7: an extractor that sets a directory's mode by name at the end
// follows the symlink that replaced it; O_NOFOLLOW|O_DIRECTORY refuses.
func TestExercise07_7(t *testing.T) {
	p := program(t, "07-7")
	d := t.TempDir()
	host := filepath.Join(d, "host-file")
	require.NoError(t, os.WriteFile(host, []byte("host\n"), 0o644))
	layer := evilLayer(t, d, host)
	r := testenv.Run(t, nil, p, layer, filepath.Join(d, "out"))
	st, err := os.Stat(host)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), st.Mode().Perm(), "answers/07-7 must leave the host file's mode alone (mode now %v)", st.Mode())
	require.Zero(t, st.Mode()&(os.ModeSetuid|os.ModeSetgid), "no setuid bit on the host file")
	errno := "not a directory"
	out := strings.ToLower(r.Stdout + r.Stderr)
	assert.Contains(t, out, errno, "answers/07-7 says what opening d with O_NOFOLLOW|O_DIRECTORY gave: %s", r)
	a := answer(t, "07-7", 2)
	assert.True(t, same(strings.TrimPrefix(a[0], "0"), "4777"), "line 1: the host file's mode after your first, by-name extractor: not %q", a[0])
	assert.True(t, same(a[1], errno), "line 2: the error of opening d with O_NOFOLLOW|O_DIRECTORY: %s, not %q", errno, a[1])
}

// 07-8: commit freezes a running container, so it never races it; a
// container its user paused stays paused.
func TestExercise07_8(t *testing.T) {
	a := answer(t, "07-8", 2)
	b := bin(t, "07-unionfs")
	env := testenv.StateEnv(t)
	c := testenv.Start(t, env, b, "run", "--id", "busy", "--net", "none", "sh", "-c",
		"i=0; while [ ! -e /stop ]; do i=$((i+1)); head -c 65536 /dev/zero > /big; echo $i >> /big; done")
	testenv.ContainerPid(t, testenv.StateRoot(env), "busy")
	merged := filepath.Join(layersOf(env), "containers", "busy", "merged")
	defer func() {
		// Stop it as the chapter does, so that its runtime unmounts.
		testenv.Run(t, env, b, "resume", "busy")
		_ = os.WriteFile(filepath.Join(merged, "stop"), nil, 0o644)
		c.Wait(t)
		testenv.Run(t, env, b, "rm", "busy")
	}()
	refused := 0
	for i := 0; i < 5; i++ {
		if r := testenv.Run(t, env, b, "commit", "busy", filepath.Join(t.TempDir(), "l.tar")); r.Code != 0 {
			refused++
		}
	}
	r := testenv.Run(t, env, b, "pause", "busy")
	require.Equal(t, 0, r.Code, r.String())
	r = testenv.Run(t, env, b, "commit", "busy", filepath.Join(t.TempDir(), "l.tar"))
	require.Equal(t, 0, r.Code, r.String())
	state := "running"
	if frozen(t, "busy") {
		state = "paused"
	}
	require.Equal(t, 0, refused, "commit pauses a running container: none refused")
	assert.True(t, same(a[0], "0"), "line 1: how many of the commits without --pause=false were refused: not %q", a[0])
	ans := strings.ToLower(a[1])
	assert.True(t, ans == state || state == "paused" && ans == "frozen", "line 2: the container's state after committing it paused (paused or running): %s, not %q", state, a[1])
}

// frozen reports whether container id's group is frozen.
func frozen(t *testing.T, id string) bool {
	t.Helper()
	if b, err := os.ReadFile("/sys/fs/cgroup/freezer/berth/" + id + "/freezer.state"); err == nil {
		return strings.TrimSpace(string(b)) == "FROZEN"
	}
	b, err := os.ReadFile("/sys/fs/cgroup/berth/" + id + "/cgroup.freeze")
	require.NoError(t, err, "no freezer for %s", id)
	return strings.TrimSpace(string(b)) == "1"
}
