//go:build linux

package cli_test

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// A named volume: made by volume create, shown by ls and inspect in
// Docker's shape, shared by two containers, surviving rm, refused to
// volume rm while any container (running or not) lists it, gone with
// volume rm then.
func TestNamedVolume(t *testing.T) {
	h := newHost(t)
	assert.Equal(t, "data", h.ok("volume", "create", "--label", "team=a", "data"))
	assert.Equal(t, "data", h.ok("volume", "create", "data"), "a second create of a name is no error")
	var got []map[string]any
	require.NoError(t, json.Unmarshal([]byte(h.ok("volume", "inspect", "data")), &got))
	require.Len(t, got, 1)
	mp := filepath.Join(h.data, "volumes", "data", "_data")
	assert.Equal(t, "data", got[0]["Name"])
	assert.Equal(t, "local", got[0]["Driver"])
	assert.Equal(t, "local", got[0]["Scope"])
	assert.Equal(t, mp, got[0]["Mountpoint"])
	assert.Equal(t, map[string]any{"team": "a"}, got[0]["Labels"])
	assert.NotEmpty(t, got[0]["CreatedAt"])
	for _, d := range []string{filepath.Join(h.data, "volumes"), filepath.Join(h.data, "volumes", "data")} {
		st, err := os.Stat(d)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o700), st.Mode().Perm(), "%s: no user of the host may reach into a volume", d)
	}

	// Two containers at once: what one writes, the other reads.
	h.runD("--name", "writer", "-v", "data:/shared", "sh", "-c", "echo from-writer >/shared/note; echo ready; sleep 1000")
	h.waitLog("writer", "ready")
	assert.Equal(t, "from-writer", h.ok(h.runArgs("", "--name", "reader", "-v", "data:/mnt/s:ro", "cat", "/mnt/s/note")...))
	r := h.run(h.runArgs("", "--rm", "-v", "data:/s:ro", "sh", "-c", "echo x >/s/y")...)
	assert.NotEqual(t, 0, r.Code, ":ro: %s", r)

	// In use by a running container, and by a stopped one: refused, in
	// one line naming the container, with or without -f.
	h.ok("stop", "-t", "0", "writer")
	for _, args := range [][]string{{"volume", "rm", "data"}, {"volume", "rm", "-f", "data"}} {
		r := h.run(args...)
		assert.Equal(t, 1, r.Code, "%s", r)
		assert.Contains(t, r.Stderr, "volume is in use")
		assert.Contains(t, r.Stderr, "(writer)")
		assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.Stderr), "\n")+1, "one line: %q", r.Stderr)
	}
	// The containers go; the volume and what it holds stay.
	h.ok("rm", "-v", "writer", "reader")
	b, err := os.ReadFile(filepath.Join(mp, "note"))
	require.NoError(t, err)
	assert.Equal(t, "from-writer\n", string(b))
	assert.Equal(t, "from-writer", h.ok(h.runArgs("", "--rm", "-v", "data:/again", "cat", "/again/note")...))

	assert.Equal(t, "data", h.ok("volume", "ls", "-q"))
	assert.Equal(t, "data", h.ok("volume", "ls", "-q", "--filter", "label=team=a"))
	assert.Equal(t, "", h.ok("volume", "ls", "-q", "--filter", "label=team=b"))
	assert.Equal(t, "data local", h.ok("volume", "ls", "--format", "{{.Name}} {{.Driver}}"))
	assert.Equal(t, "data", h.ok("volume", "rm", "data"))
	assert.NoDirExists(t, filepath.Join(h.data, "volumes", "data"))
	r = h.run("volume", "inspect", "data")
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Stderr, "no such volume")
	assert.Equal(t, 0, h.run("volume", "rm", "-f", "data").Code, "-f: a volume gone is no error")
}

// A volume name becomes a directory name under the data root: a name
// with a slash or dots is refused (exit 125), and nothing is made.
func TestVolumeNameRefused(t *testing.T) {
	h := newHost(t)
	for _, name := range []string{"..", "../escape", "a/b", ".hidden", "x"} {
		r := h.run("volume", "create", name)
		assert.Equal(t, 125, r.Code, "volume create %q: %s", name, r)
		assert.Contains(t, r.Stderr, "invalid characters for a local volume name")
	}
	for _, name := range []string{"..", "../escape", ".hidden"} {
		r := h.run(h.runArgs("", "--rm", "-v", name+":/x", "true")...)
		assert.Equal(t, 125, r.Code, "-v %s:/x: %s", name, r)
	}
	assert.NoFileExists(t, filepath.Join(h.data, "_data"))
	assert.NoDirExists(t, filepath.Join(h.data, "escape"))
	assert.NoDirExists(t, filepath.Join(h.data, "volumes", "a"))
}

// -v NAME:/path on an empty volume copies what the image has there,
// owner and mode kept (Docker's copy-up); a volume with files is not
// filled again; nocopy leaves it empty.
func TestNamedVolumeFilledFromImage(t *testing.T) {
	h := newHost(t)
	rootfs := testenv.CopyRootfs(t)
	dir := filepath.Join(rootfs, "srv", "www")
	require.NoError(t, os.MkdirAll(dir, 0o750))
	require.NoError(t, os.Chown(dir, 33, 34))
	require.NoError(t, os.Chmod(dir, 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "index.html"), []byte("from the image\n"), 0o640))
	require.NoError(t, os.Chown(filepath.Join(dir, "index.html"), 33, 34))
	run := func(args ...string) string {
		return h.ok(append([]string{"run", "--rm", "--rootfs", rootfs, "--network", "none"}, args...)...)
	}
	assert.Equal(t, "from the image", run("-v", "www:/srv/www", "cat", "/srv/www/index.html"))
	mp := filepath.Join(h.data, "volumes", "www", "_data")
	st, err := os.Stat(mp)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o750), st.Mode().Perm(), "the volume's root takes the image directory's mode")
	assert.Equal(t, "33:34 640", run("-v", "www:/srv/www", "stat", "-c", "%u:%g %a", "/srv/www/index.html"))
	// Filled once: the container's changes stay, the image does not come back.
	run("-v", "www:/srv/www", "sh", "-c", "rm /srv/www/index.html; echo mine >/srv/www/other")
	assert.Equal(t, "other", run("-v", "www:/srv/www", "ls", "/srv/www"))
	assert.Equal(t, "", run("-v", "fresh:/srv/www:nocopy", "ls", "/srv/www"))
	assert.Equal(t, "index.html", run("--mount", "type=volume,src=viamount,dst=/srv/www", "ls", "/srv/www"))
}

// An image may hold a symlink where a volume is mounted, pointing out of
// the container: the volume must still go inside the container's root
// (stage 03 resolves every mount point in the root through handles) and
// be filled from inside the image, never from the host's directory.
func TestVolumeMountPointSymlinkStaysInside(t *testing.T) {
	h := newHost(t)
	rootfs := testenv.CopyRootfs(t)
	host := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(host, "host-file"), []byte("host\n"), 0o600))
	require.NoError(t, os.Symlink(host, filepath.Join(rootfs, "data")))
	out := h.ok("run", "--rm", "--rootfs", rootfs, "--network", "none", "-v", "sym:/data",
		"sh", "-c", "ls /data; echo from-ctr >/data/written")
	assert.NotContains(t, out, "host-file", "the volume was filled from the host directory the symlink names")
	assert.NoFileExists(t, filepath.Join(host, "written"), "the volume was mounted on the host")
	ents, err := os.ReadDir(host)
	require.NoError(t, err)
	assert.Len(t, ents, 1, "the host directory was changed")
	assert.FileExists(t, filepath.Join(h.data, "volumes", "sym", "_data", "written"))
}

// What a volume holds is never part of commit or export: the volume is a
// mount over the container's root, not in its layer.
func TestVolumeNotCommittedNorExported(t *testing.T) {
	h := newHost(t)
	h.importBusybox()
	h.ok("run", "-d", "--network", "none", "--name", "c", "-v", "keep:/keep", "-v", "/anon", "busybox", "sh", "-c",
		"echo v >/keep/in-volume; echo a >/anon/in-anon; echo l >/in-layer; echo ready; sleep 1000")
	h.waitLog("c", "ready")
	h.ok("stop", "-t", "0", "c")
	out := filepath.Join(t.TempDir(), "c.tar")
	h.ok("export", "-o", out, "c")
	names := tarNames(t, out)
	assert.Contains(t, names, "in-layer")
	assert.NotContains(t, names, "keep/in-volume")
	assert.NotContains(t, names, "anon/in-anon")
	h.ok("commit", "c", "snap")
	assert.Equal(t, "l", h.ok("run", "--rm", "--network", "none", "snap", "cat", "/in-layer"))
	r := h.run("run", "--rm", "--network", "none", "snap", "ls", "/keep", "/anon")
	assert.NotContains(t, r.Stdout, "in-volume")
	assert.NotContains(t, r.Stdout, "in-anon")
	h.ok("rm", "c")
	assert.FileExists(t, filepath.Join(h.data, "volumes", "keep", "_data", "in-volume"), "the volume survives rm")
	h.ok("rmi", "snap")
}

func tarNames(t *testing.T, p string) []string {
	t.Helper()
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	var names []string
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		require.NoError(t, err)
		names = append(names, strings.TrimPrefix(hdr.Name, "./"))
	}
}

// An anonymous volume goes with --rm and with rm -v, not with a plain
// rm; volume prune removes only anonymous ones not in use, -a every
// unused one, and nothing is left after.
func TestAnonymousVolumesAndPrune(t *testing.T) {
	h := newHost(t)
	h.ok(h.runArgs("", "--rm", "-v", "/gone", "sh", "-c", "echo x >/gone/x")...)
	assert.Equal(t, "", h.ok("volume", "ls", "-q"), "--rm removes the anonymous volume")

	h.ok(h.runArgs("", "--name", "kept", "-v", "/stays", "true")...)
	anon := h.ok("volume", "ls", "-q")
	require.Len(t, anon, 64, "one anonymous volume, named as Docker's")
	var labels map[string]string
	require.NoError(t, json.Unmarshal([]byte(h.ok("volume", "inspect", "--format", "{{json .Labels}}", anon)), &labels))
	assert.Contains(t, labels, "com.docker.volume.anonymous")
	h.ok("volume", "create", "named")
	h.ok("volume", "prune", "-f")
	assert.ElementsMatch(t, []string{anon, "named"}, strings.Fields(h.ok("volume", "ls", "-q")), "in use: kept")
	h.ok("rm", "kept") // without -v: the volume stays
	out := h.ok("volume", "prune", "-f")
	assert.Contains(t, out, anon)
	assert.Equal(t, "named", h.ok("volume", "ls", "-q"), "without -a prune keeps named volumes")
	h.ok("volume", "prune", "-af")
	assert.Equal(t, "", h.ok("volume", "ls", "-q"))
	ents, err := os.ReadDir(filepath.Join(h.data, "volumes"))
	require.NoError(t, err)
	assert.Empty(t, ents, "nothing left after volume prune -a")

	h.ok(h.runArgs("", "--name", "withv", "-v", "/v", "true")...)
	h.ok("rm", "-v", "withv")
	assert.Equal(t, "", h.ok("volume", "ls", "-q"), "rm -v removes the anonymous volume")
}

// --volumes-from takes another container's volumes (read-only with
// :ro); --mount type=tmpfs and a tmpfs volume are bounded by their size.
func TestVolumesFromAndTmpfs(t *testing.T) {
	h := newHost(t)
	h.runD("--name", "src", "-v", "shared:/shared", "-v", "/anon", "sh", "-c", "echo s >/shared/s; echo a >/anon/a; echo ready; sleep 1000")
	h.waitLog("src", "ready")
	assert.Equal(t, "s a", h.ok(h.runArgs("", "--rm", "--volumes-from", "src", "sh", "-c", "echo $(cat /shared/s) $(cat /anon/a)")...))
	r := h.run(h.runArgs("", "--rm", "--volumes-from", "src:ro", "sh", "-c", "echo x >/shared/x")...)
	assert.NotEqual(t, 0, r.Code, "--volumes-from :ro: %s", r)
	// rm -v of the container that made an anonymous volume another one
	// mounts (--volumes-from) keeps it, as Docker: it is in use.
	h.ok(h.runArgs("", "--name", "taker", "--volumes-from", "src", "true")...)
	h.ok("rm", "-f", "-v", "src")
	assert.Len(t, strings.Fields(h.ok("volume", "ls", "-q")), 2, "both volumes stay: taker uses them")
	assert.Equal(t, "a", h.ok(h.runArgs("", "--rm", "--volumes-from", "taker", "cat", "/anon/a")...))
	h.ok("rm", "taker")

	for _, args := range [][]string{
		{"--mount", "type=tmpfs,dst=/t,tmpfs-size=1m"},
		{"--tmpfs", "/t:size=1m"},
	} {
		r := h.run(h.runArgs("", append(append([]string{"--rm"}, args...), "sh", "-c", "dd if=/dev/zero of=/t/z bs=1k count=2048 2>&1; ls -l /t/z")...)...)
		assert.Contains(t, r.Stdout, "No space left on device", "%v: %s", args, r)
		assert.Contains(t, r.Stdout, " 1048576 ", "%v: the file stops at the tmpfs's size", args)
	}
	h.ok("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=1m", "small")
	r = h.run(h.runArgs("", "--rm", "-v", "small:/t", "sh", "-c", "dd if=/dev/zero of=/t/z bs=1k count=2048 2>&1; grep ' /t ' /proc/mounts")...)
	assert.Contains(t, r.Stdout, "No space left on device", "%s", r)
	assert.Contains(t, r.Stdout, "tmpfs /t tmpfs")
	r = h.run("volume", "create", "--opt", "type=nfs", "bad")
	assert.Equal(t, 125, r.Code, "%s", r)
	h.ok("volume", "prune", "-af")
}
