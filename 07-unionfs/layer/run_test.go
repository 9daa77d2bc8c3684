//go:build linux

package layer_test

import (
	"archive/tar"
	"bytes"
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

// The tests pass --net none unless they test the network: as root the
// default is stage 04's bridge, which they do not need.

func tarList(t *testing.T, path string) []string {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var names []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		require.NoError(t, err)
		names = append(names, h.Name)
	}
}

func mounted(t *testing.T, path string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	return strings.Contains(string(b), " "+path+" ")
}

// The walk a learner does by hand, with each driver: write, delete,
// re-create; diff and commit show exactly that, and not the init layer.
func TestRunDiffCommitRm(t *testing.T) {
	for _, driver := range []string{"overlay", "copy"} {
		t.Run(driver, func(t *testing.T) {
			e := testenv.NewStage(t, "07-unionfs")
			rootfs := testenv.Rootfs(t)
			motd, err := os.ReadFile(filepath.Join(rootfs, "etc/motd"))
			require.NoError(t, err)

			out := e.OK("run", "--net", "none", "--id", "c1", "--hostname", "box", "--storage-driver", driver, "sh", "-c",
				"cat /etc/hostname; echo changed > /etc/motd; rm /bin/vi; echo 10.0.0.9 extra >> /etc/hosts; rm -r /home; mkdir /home; touch /home/new; cat /etc/motd")
			assert.Equal(t, "box\nchanged\n", out)

			assert.Equal(t, string(motd), string(must(os.ReadFile(filepath.Join(rootfs, "etc/motd")))), "the lower layer is unchanged")
			assert.FileExists(t, filepath.Join(rootfs, "bin/vi"))

			assert.Equal(t, "C /bin\nD /bin/vi\nC /etc\nC /etc/motd\nC /home\nA /home/new\n", e.OK("diff", "c1"))

			tarball := filepath.Join(t.TempDir(), "c1.tar")
			e.OK("commit", "c1", tarball)
			want := []string{"bin/", "bin/.wh.vi", "etc/", "etc/motd", "home/"}
			if driver == "overlay" {
				want = append(want, "home/.wh..wh..opq")
			}
			assert.Equal(t, append(want, "home/new"), tarList(t, tarball))

			// The layer outlives the run; the same id cannot run again.
			r := e.Run("run", "--net", "none", "--id", "c1", "true")
			assert.Equal(t, 125, r.Code)
			assert.Contains(t, r.Stderr, "07-unionfs: container \"c1\" already has a layer from an earlier run")
			e.OK("rm", "c1")
			assert.NoDirExists(t, filepath.Join(e.Data, "layers/containers/c1"))
			r = e.Run("diff", "c1")
			assert.Equal(t, 125, r.Code)
			assert.Contains(t, r.Stderr, `no container layer "c1"`)
		})
	}
}

// Volumes are bind mounts: writes land on the host and never in the
// container layer; :ro refuses writes; an anonymous volume is seeded from
// the image and lives in the state directory.
func TestVolumesBypassTheUnion(t *testing.T) {
	e := testenv.NewStage(t, "07-unionfs")
	host := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(host, "from-host"), []byte("h\n"), 0o644))
	ro := t.TempDir()
	out := e.OK("run", "--net", "none", "--id", "v1", "--volume", host+":/data", "--volume", ro+":/srv/ro:ro", "--volume", "/etc",
		"sh", "-c", "cat /data/from-host; echo w > /data/from-ctr; touch /srv/ro/x 2>/dev/null || echo ro refused; ls /etc/motd; echo a > /etc/anon")
	assert.Equal(t, "h\nro refused\n/etc/motd\n", out)
	assert.Equal(t, "w\n", string(must(os.ReadFile(filepath.Join(host, "from-ctr")))))
	assert.NoFileExists(t, filepath.Join(ro, "x"))
	assert.Equal(t, "", e.OK("diff", "v1"), "volume writes are not changes of the container")
	tarball := filepath.Join(t.TempDir(), "v1.tar")
	e.OK("commit", "v1", tarball)
	assert.Empty(t, tarList(t, tarball))
	e.OK("rm", "v1")
}

// Stage 04 binds /etc/hostname, /etc/hosts and /etc/resolv.conf from the
// state directory over the init layer's empty files: the container sees
// 04's files, a write to them lands in the state directory, and the
// container layer has none of them, so diff and commit show nothing.
func TestEtcFilesOverInitLayer(t *testing.T) {
	e := testenv.NewStage(t, "07-unionfs")
	for _, tc := range []struct{ net, hosts string }{
		{"none", `127\.0\.1\.1\tbox`},
		{"bridge", `10\.88\.\d+\.\d+\tbox`}, // the default as root
	} {
		t.Run(tc.net, func(t *testing.T) {
			id := "etc-" + tc.net
			out := e.OK("run", "--net", tc.net, "--id", id, "--hostname", "box", "sh", "-c",
				"cat /etc/hostname; grep box /etc/hosts; grep -c '^nameserver' /etc/resolv.conf; "+
					"echo 10.0.0.9 extra >> /etc/hosts; echo written > /etc/hostname; "+
					`grep -cE ' /etc/(hosts|hostname|resolv\.conf) ' /proc/self/mountinfo`)
			assert.Regexp(t, "^box\n"+tc.hosts+"\n[1-9]\n3\n$", out)
			layer := filepath.Join(e.Data, "layers/containers", id)
			for _, f := range []string{"hostname", "hosts", "resolv.conf"} {
				assert.NoFileExists(t, filepath.Join(layer, "diff/etc", f), "nothing in the container layer")
				assert.Equal(t, "", string(must(os.ReadFile(filepath.Join(layer, "init/etc", f)))), "an empty mount point in the init layer")
			}
			assert.Equal(t, "", e.OK("diff", id))
			tarball := filepath.Join(t.TempDir(), id+".tar")
			e.OK("commit", id, tarball)
			assert.Empty(t, tarList(t, tarball))
			e.OK("rm", id)
		})
	}
}

// Stage 06's cgroup holds a container on an overlay root: --memory kills
// at the limit, and the layer keeps what was written before.
func TestCgroupOnOverlayRoot(t *testing.T) {
	e := testenv.NewStage(t, "07-unionfs")
	r := e.Run("run", "--net", "none", "--id", "cg", "--memory", "32m", "sh", "-c",
		"echo kept > /before; awk '$2 == \"/\" {print $3}' /proc/mounts; dd if=/dev/zero of=/dev/null bs=64M count=1")
	assert.Equal(t, 137, r.Code, r.String())
	assert.Equal(t, "overlay\n", r.Stdout)
	assert.Contains(t, r.Stderr, "OOMKilled: the kernel killed")
	assert.False(t, mounted(t, filepath.Join(e.Data, "layers/containers/cg/merged")))
	assert.Equal(t, "A /before\n", e.OK("diff", "cg"))
	e.OK("rm", "cg")
}

// --rm removes the container layer on exit.
func TestRmOnExit(t *testing.T) {
	e := testenv.NewStage(t, "07-unionfs")
	e.OK("run", "--net", "none", "--rm", "--id", "gone", "touch", "/x")
	assert.NoDirExists(t, filepath.Join(e.Data, "layers/containers/gone"))
}

// A runtime killed with SIGKILL leaves its overlay mounted; the next run
// (here rm) collects it: unmounted, then removed.
func TestKilledRuntimeCollected(t *testing.T) {
	e := testenv.NewStage(t, "07-unionfs")
	b := testenv.Start(t, e.Vars, e.Bin, "run", "--net", "none", "--id", "k1", "sleep", "60")
	testenv.ContainerPid(t, testenv.StateRoot(e.Vars), "k1")
	merged := filepath.Join(e.Data, "layers/containers/k1/merged")
	require.True(t, mounted(t, merged))
	require.NoError(t, b.Cmd.Process.Kill())
	b.Wait(t)
	assert.True(t, mounted(t, merged), "a SIGKILLed runtime cleans nothing")
	e.OK("rm", "k1")
	assert.False(t, mounted(t, merged))
	assert.NoDirExists(t, filepath.Join(e.Data, "layers/containers/k1"))
}

// --layers (top first) and --image (tarballs, base first in "order").
func TestLayersAndImage(t *testing.T) {
	e := testenv.NewStage(t, "07-unionfs")
	rootfs := testenv.Rootfs(t)
	top := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(top, "motd-top"), []byte("top\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(top, "etc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(top, "etc/motd"), []byte("from top\n"), 0o644))
	out := e.OK("run", "--net", "none", "--rm", "--layers", top+":"+rootfs, "sh", "-c", "cat /motd-top /etc/motd")
	assert.Equal(t, "top\nfrom top\n", out)

	img := t.TempDir()
	base := exec.Command("tar", "-C", rootfs, "-cf", filepath.Join(img, "base.tar"), ".")
	require.NoError(t, base.Run())
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []tar.Header{
		{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "etc/motd", Typeflag: tar.TypeReg, Mode: 0o644, Size: 6},
		{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "bin/.wh.vi", Typeflag: tar.TypeReg},
	} {
		require.NoError(t, tw.WriteHeader(&h))
		if h.Size > 0 {
			_, _ = tw.Write([]byte("image\n"))
		}
	}
	require.NoError(t, tw.Close())
	require.NoError(t, os.WriteFile(filepath.Join(img, "top.tar"), buf.Bytes(), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(img, "order"), []byte("base.tar\ntop.tar\n"), 0o644))
	out = e.OK("run", "--net", "none", "--rm", "--image", img, "sh", "-c", "cat /etc/motd; ls /bin/vi 2>&1 || true")
	assert.Equal(t, "image\nls: /bin/vi: No such file or directory\n", out)
}

// Where overlay cannot mount (here: the data root is itself on overlay,
// which cannot be an upper directory), the copy driver takes over and says
// so in one line.
func TestFallbackSelectedAutomatically(t *testing.T) {
	e := testenv.NewStage(t, "07-unionfs")
	d := t.TempDir()
	for _, s := range []string{"l", "u", "w", "m"} {
		require.NoError(t, os.Mkdir(filepath.Join(d, s), 0o755))
	}
	m := filepath.Join(d, "m")
	require.NoError(t, unix.Mount("overlay", m, "overlay", 0,
		"lowerdir="+filepath.Join(d, "l")+",upperdir="+filepath.Join(d, "u")+",workdir="+filepath.Join(d, "w")))
	t.Cleanup(func() { assert.NoError(t, unix.Unmount(m, unix.MNT_DETACH)) })
	r := e.Run("run", "--net", "none", "--data-root", m, "--id", "fb", "sh", "-c", "echo x > /etc/motd; echo ran")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "ran\n", r.Stdout)
	assert.Regexp(t, `^07-unionfs: overlay does not mount on .*/m/layers \(mount: invalid argument\): using the copy driver`, r.Stderr)
	r = e.Run("diff", "--data-root", m, "fb")
	assert.Equal(t, "C /etc\nC /etc/motd\n", r.Stdout, r.String())
	r = e.Run("rm", "--data-root", m, "fb")
	assert.Equal(t, 0, r.Code, r.String())
}

func TestBadInput(t *testing.T) {
	e := testenv.NewStage(t, "07-unionfs")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--layers", "/nonexistent-layer", "true"}, "--layers: stat /nonexistent-layer: no such file or directory"},
		{[]string{"run", "--volume", "rel:/data", "true"}, "the host path must be absolute"},
		{[]string{"run", "--storage-driver", "zfs", "true"}, `invalid --storage-driver "zfs"`},
		{[]string{"run", "--image", "/tmp", "true"}, `--image /tmp: stat /tmp/order: no such file or directory`},
		{[]string{"diff", "../etc"}, `invalid container id "../etc"`},
	} {
		r := e.Run(tc.args...)
		assert.Equal(t, 125, r.Code, r.String())
		assert.Contains(t, r.Stderr, tc.want)
		assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), "one line: %q", r.Stderr)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// A runtime killed while it probes overlay leaves <data-root>/layers/probe-*
// behind, sometimes still mounted: the next run's probe unmounts and
// removes them. What it learns is remembered until reboot: the run after
// it does not probe at all.
func TestProbeLeftoversCollected(t *testing.T) {
	e := testenv.NewStage(t, "07-unionfs")
	layers := filepath.Join(e.Data, "layers")
	leftover := func(name string, mount bool) string {
		d := filepath.Join(layers, name)
		for _, s := range []string{"lower", "upper", "work", "merged"} {
			require.NoError(t, os.MkdirAll(filepath.Join(d, s), 0o700))
		}
		if mount {
			m := filepath.Join(d, "merged")
			require.NoError(t, unix.Mount("overlay", m, "overlay", 0,
				"lowerdir="+filepath.Join(d, "lower")+",upperdir="+filepath.Join(d, "upper")+",workdir="+filepath.Join(d, "work")))
			t.Cleanup(func() { _ = unix.Unmount(m, unix.MNT_DETACH) })
		}
		return d
	}
	mountedOne, plain := leftover("probe-1234", true), leftover("probe-5678", false)
	require.True(t, mounted(t, filepath.Join(mountedOne, "merged")))

	r := e.Run("run", "--net", "none", "--rm", "--verbose", "true")
	require.Equal(t, 0, r.Code, r.String())
	assert.Contains(t, r.Stderr, "layer: overlay mounts on "+layers+" (probed; remembered until reboot in "+filepath.Join(layers, "overlay-probe")+")")
	assert.False(t, mounted(t, filepath.Join(mountedOne, "merged")))
	assert.NoDirExists(t, mountedOne)
	assert.NoDirExists(t, plain)

	r = e.Run("run", "--net", "none", "--rm", "--verbose", "true")
	require.Equal(t, 0, r.Code, r.String())
	assert.Contains(t, r.Stderr, "layer: overlay mounts on "+layers+" (remembered from this boot's probe")

	// Another boot's answer is not this one's.
	require.NoError(t, os.WriteFile(filepath.Join(layers, "overlay-probe"), []byte("mounts boot=another dev=0:0 fs=0x0\n"), 0o600))
	r = e.Run("run", "--net", "none", "--rm", "--verbose", "--storage-driver", "overlay", "true")
	require.Equal(t, 0, r.Code, r.String())
	assert.Contains(t, r.Stderr, "(probed; remembered until reboot")
}
