//go:build linux

package cli_test

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cp both ways, Docker's rules for directories.
func TestCp(t *testing.T) {
	h := newHost(t)
	h.runD("--name", "c", "sh", "-c", "mkdir -p /data/sub; echo inside >/data/f; echo deep >/data/sub/g; ln -s f /data/link; echo ready; sleep 1000")
	h.waitLog("c", "ready")
	out := t.TempDir()
	h.ok("cp", "c:/data", out)
	b, err := os.ReadFile(filepath.Join(out, "data", "sub", "g"))
	require.NoError(t, err)
	assert.Equal(t, "deep\n", string(b))
	l, err := os.Readlink(filepath.Join(out, "data", "link"))
	require.NoError(t, err)
	assert.Equal(t, "f", l, "a symlink is copied as one")
	h.ok("cp", "c:/data/f", filepath.Join(out, "copy"))
	b, _ = os.ReadFile(filepath.Join(out, "copy"))
	assert.Equal(t, "inside\n", string(b))

	in := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(in, "dir", "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(in, "dir", "sub", "x"), []byte("from the host\n"), 0o640))
	require.NoError(t, os.Chown(filepath.Join(in, "dir", "sub", "x"), 1000, 1000))
	h.ok("cp", filepath.Join(in, "dir"), "c:/data/")
	assert.Equal(t, "from the host\n0:0 640", h.ok("exec", "c", "sh", "-c", "cat /data/dir/sub/x; stat -c '%u:%g %a' /data/dir/sub/x"))
	h.ok("cp", "-a", filepath.Join(in, "dir", "sub", "x"), "c:/data/x")
	assert.Equal(t, "1000:1000", h.ok("exec", "c", "stat", "-c", "%u:%g", "/data/x"), "-a keeps the owner")
	h.ok("cp", filepath.Join(in, "dir", "sub", "x"), "c:/data/f")
	assert.Equal(t, "from the host", h.ok("exec", "c", "cat", "/data/f"), "a file is replaced")

	tr := tar.NewReader(strings.NewReader(h.ok("cp", "c:/data", "-")))
	var names []string
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, hdr.Name)
	}
	assert.ElementsMatch(t, []string{"data/", "data/f", "data/link", "data/sub/", "data/sub/g", "data/dir/", "data/dir/sub/", "data/dir/sub/x", "data/x"}, names)
	r := h.runIn("not a tar stream", "cp", "-", "c:/data")
	assert.Equal(t, 1, r.Code, "cp - reads a tar stream (TestCpTarStreamIn): %s", r)

	r = h.run("cp", "c:/nosuch", out)
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Stderr, "could not find the file /nosuch in container")
	r = h.run("cp", "c:/data", "c:/x")
	assert.Equal(t, 125, r.Code)
	h.ok("stop", "-t", "0", "c")
	h.ok("cp", "c:/data/f", filepath.Join(out, "stopped"))
	b, _ = os.ReadFile(filepath.Join(out, "stopped"))
	assert.Equal(t, "from the host\n", string(b), "from a stopped container (TestCpStopped)")
}

// A container controls its tree: a directory it swaps for a symlink to a
// host directory, in a loop or once and for all, never makes cp read or
// write the host's files (CVE-2018-15664). Paths are resolved beneath a
// descriptor of the container's root with openat2(RESOLVE_IN_ROOT), never
// joined to /proc/PID/root, where the kernel would follow the symlink from
// the host's root.
func TestCpSymlinkEscape(t *testing.T) {
	h := newHost(t)
	hostDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(hostDir, "secret"), []byte("host secret\n"), 0o600))
	payload := filepath.Join(t.TempDir(), "payload")
	require.NoError(t, os.WriteFile(payload, []byte("from the container's user\n"), 0o644))
	h.runD("--name", "c", "sh", "-c", "mkdir /data; echo inside >/data/secret; ln -s "+hostDir+" /static; echo ready; "+
		"while true; do mv /data /data.d; ln -s "+hostDir+" /data; rm /data; mv /data.d /data; done")
	h.waitLog("c", "ready")
	out := t.TempDir()

	r := h.run("cp", "c:/static/secret", filepath.Join(out, "static"))
	assert.NotEqual(t, 0, r.Code, r.String())
	b, _ := os.ReadFile(filepath.Join(out, "static"))
	assert.NotContains(t, string(b), "host secret")
	r = h.run("cp", "c:/static/secret", "-")
	assert.NotContains(t, r.Stdout, "host secret", "as a tar stream")
	r = h.run("cp", payload, "c:/static/pwned")
	assert.NotEqual(t, 0, r.Code, r.String())
	assert.NoFileExists(t, filepath.Join(hostDir, "pwned"))

	copied := 0
	for i := 0; i < 100; i++ {
		dst := filepath.Join(out, strconv.Itoa(i))
		if h.run("cp", "c:/data/secret", dst).Code == 0 {
			copied++
			b, err := os.ReadFile(dst)
			require.NoError(t, err)
			require.Equal(t, "inside\n", string(b), "copy %d read the host's file", i)
		}
		h.run("cp", payload, "c:/data/pwned"+strconv.Itoa(i))
	}
	entries, err := os.ReadDir(hostDir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "cp wrote into the host's directory: %v", entries)
	t.Logf("%d of 100 copies out won the race and copied the container's own file", copied)
}

// A stopped container's root is reached without running it: a detached
// overlay of its layers (layer.Store.OpenDetached), both ways, and what is
// copied in is there at its next start. A symlink it planted in its upper
// directory to a host directory resolves in its root, as a running one's.
func TestCpStopped(t *testing.T) {
	h := newHost(t)
	hostDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(hostDir, "secret"), []byte("host secret\n"), 0o600))
	h.ok(h.runArgs("", "--name", "c", "sh", "-c",
		"mkdir /data; echo inside >/data/f; ln -s "+hostDir+" /static; ln -s "+hostDir+"/secret /leak; "+
			"test -f /data/in && cat /data/in; exit 0")...)
	assert.Equal(t, "exited", h.inspect("c", "{{.State.Status}}"))
	out := t.TempDir()
	h.ok("cp", "c:/data/f", filepath.Join(out, "f"))
	b, err := os.ReadFile(filepath.Join(out, "f"))
	require.NoError(t, err)
	assert.Equal(t, "inside\n", string(b))
	in := filepath.Join(t.TempDir(), "in")
	require.NoError(t, os.WriteFile(in, []byte("copied in while stopped\n"), 0o644))
	h.ok("cp", in, "c:/data/")
	assert.Equal(t, "copied in while stopped", strings.TrimSpace(h.ok("start", "-a", "c")))

	for _, src := range []string{"c:/static/secret", "c:/leak"} {
		stolen := filepath.Join(out, "stolen")
		os.Remove(stolen)
		r := h.run("cp", src, stolen)
		if st, err := os.Lstat(stolen); err == nil && st.Mode().IsRegular() {
			b, _ := os.ReadFile(stolen) // a symlink is copied as one: not a read
			assert.NotContains(t, string(b), "host secret", "%s: %s", src, r)
		}
		r = h.run("cp", src, "-")
		assert.NotContains(t, r.Stdout, "host secret", "%s as a tar stream", src)
	}
	r := h.run("cp", in, "c:/static/pwned")
	assert.NotEqual(t, 0, r.Code, r.String())
	assert.NoFileExists(t, filepath.Join(hostDir, "pwned"))
	r = h.run("cp", in, "c:/leak")
	b, _ = os.ReadFile(filepath.Join(hostDir, "secret"))
	assert.Equal(t, "host secret\n", string(b), "cp wrote through the symlink: %s", r)
	assert.NotContains(t, h.ok("inspect", "--format", "{{.State.Status}}", "c"), "running")
}

// tarOf writes entries (name → content; a "->" prefix makes a symlink, a
// trailing "/" a directory) as a tar stream, in order.
func tarOf(t *testing.T, entries ...[2]string) string {
	t.Helper()
	var b strings.Builder
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		hdr := &tar.Header{Name: e[0], Mode: 0o640, Uid: 1000, Gid: 1000, Typeflag: tar.TypeReg, Size: int64(len(e[1]))}
		switch {
		case strings.HasSuffix(e[0], "/"):
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeDir, 0o777, 0
		case strings.HasPrefix(e[1], "->"):
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeSymlink, strings.TrimPrefix(e[1], "->"), 0
		}
		require.NoError(t, tw.WriteHeader(hdr))
		if hdr.Typeflag == tar.TypeReg {
			_, err := tw.Write([]byte(e[1]))
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	return b.String()
}

// cp - CONTAINER:DEST: a tar stream extracted in the container. The stream
// is hostile input (stage 07's untar rules); the destination the
// container's (resolved in its root).
func TestCpTarStreamIn(t *testing.T) {
	h := newHost(t)
	hostDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(hostDir, "secret"), []byte("host secret\n"), 0o600))
	require.NoError(t, os.Chmod(hostDir, 0o700))
	h.runD("--name", "c", "sh", "-c", "mkdir /data; ln -s "+hostDir+" /evil; echo ready; sleep 1000")
	h.waitLog("c", "ready")

	good := tarOf(t, [2]string{"sub/", ""}, [2]string{"sub/f", "streamed\n"}, [2]string{"sub/l", "->f"})
	r := h.runIn(good, "cp", "-", "c:/data")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "streamed\n0:0 640\nf", h.ok("exec", "c", "sh", "-c", "cat /data/sub/l; stat -c '%u:%g %a' /data/sub/f; readlink /data/sub/l"))
	r = h.runIn(good, "cp", "-a", "-", "c:/data/sub")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "1000:1000", h.ok("exec", "c", "stat", "-c", "%u:%g", "/data/sub/sub/f"), "-a keeps the tar's owners")

	hostile := map[string]string{
		"dot-dot":           tarOf(t, [2]string{"../../../../../../../../.." + hostDir + "/pwned", "x"}),
		"through a symlink": tarOf(t, [2]string{"esc", "->" + hostDir}, [2]string{"esc/pwned", "x"}),
	}
	for name, stream := range hostile {
		r := h.runIn(stream, "cp", "-", "c:/data")
		assert.NotEqual(t, 0, r.Code, "%s: %s", name, r)
		t.Logf("%s: %s", name, strings.TrimSpace(r.Stderr))
	}
	// A directory entry over a symlink replaces the link: the mode is the
	// new directory's, never the host directory's it pointed to.
	r = h.runIn(tarOf(t, [2]string{"m", "->" + hostDir}, [2]string{"m/", ""}), "cp", "-", "c:/data")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "directory 777", h.ok("exec", "c", "stat", "-c", "%F %a", "/data/m"))
	r = h.runIn(good, "cp", "-", "c:/evil")
	assert.NotEqual(t, 0, r.Code, "the container's /evil names a host directory: %s", r)
	entries, err := os.ReadDir(hostDir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "cp wrote into the host's directory: %v", entries)
	st, err := os.Stat(hostDir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), st.Mode().Perm(), "cp changed the host directory's mode")
	r = h.runIn(good, "cp", "-", "c:/data/sub/f")
	assert.Contains(t, r.Stderr, "must be a directory")
}

// cp -L follows a symlink named as the source, in the container's root
// only: an absolute link to a host file finds the container's path.
func TestCpFollowLink(t *testing.T) {
	h := newHost(t)
	hostDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(hostDir, "secret"), []byte("host secret\n"), 0o600))
	h.runD("--name", "c", "sh", "-c", "mkdir /data; echo target >/data/t; ln -s t /data/l; ln -s /data/l /data/abs; "+
		"ln -s "+hostDir+"/secret /leak; echo ready; sleep 1000")
	h.waitLog("c", "ready")
	out := t.TempDir()
	h.ok("cp", "c:/data/abs", out)
	l, err := os.Readlink(filepath.Join(out, "abs"))
	require.NoError(t, err, "without -L a symlink is copied as one")
	assert.Equal(t, "/data/l", l)
	h.ok("cp", "-L", "c:/data/abs", filepath.Join(out, "followed"))
	b, err := os.ReadFile(filepath.Join(out, "followed"))
	require.NoError(t, err)
	assert.Equal(t, "target\n", string(b))
	into := t.TempDir()
	h.ok("cp", "-L", "c:/data/abs", into)
	st, err := os.Lstat(filepath.Join(into, "abs"))
	require.NoError(t, err)
	assert.True(t, st.Mode().IsRegular(), "copied as the link's name, the target's content")

	r := h.run("cp", "-L", "c:/leak", filepath.Join(out, "leak"))
	assert.NotEqual(t, 0, r.Code, r.String())
	b, _ = os.ReadFile(filepath.Join(out, "leak"))
	assert.NotContains(t, string(b), "host secret")
	r = h.run("cp", "-L", "c:/leak", "-")
	assert.NotContains(t, r.Stdout, "host secret")

	hostLink := filepath.Join(t.TempDir(), "hl")
	require.NoError(t, os.Symlink(filepath.Join(hostDir, "secret"), hostLink))
	h.ok("cp", "-L", hostLink, "c:/data/")
	assert.Equal(t, "host secret", h.ok("exec", "c", "cat", "/data/hl"), "-L into the container follows the host's link")
}
