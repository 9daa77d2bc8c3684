//go:build linux

package rootfs_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// A missing rootfs is one line, the same in every stage that has one: 03
// and 06 check it in their rootfs step, 07 and 08 where they layer it.
func TestMissingRootfsIsOneLineInEveryStage(t *testing.T) {
	testenv.RequireRoot(t)
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	for _, stage := range []string{"03-mount", "06-cgroups", "07-unionfs", "08-image"} {
		t.Run(stage, func(t *testing.T) {
			args := []string{"run"}
			if stage != "03-mount" {
				args = append(args, "--net", "none")
			}
			bin := testenv.Binary(t, stage)
			r := testenv.Run(t, testenv.StateEnv(t), bin, append(args, "--rootfs", "/nonexistent/rootfs", "sh")...)
			assert.Equal(t, 125, r.Code, r.String())
			assert.Equal(t, stage+": rootfs: /nonexistent/rootfs does not exist: build the busybox tree with `sudo make rootfs`, or pass --rootfs DIR\n", r.Stderr)

			r = testenv.Run(t, testenv.StateEnv(t), bin, append(args, "--rootfs", file, "sh")...)
			assert.Equal(t, 125, r.Code, r.String())
			assert.Equal(t, stage+": rootfs: "+file+" is not a directory\n", r.Stderr)
		})
	}
}

// readOnlyRun runs argv in a mount namespace of its own where dir is a
// read-only tmpfs, holding an empty directory lib: the host's mount table
// is left alone.
func readOnlyRun(t *testing.T, env []string, dir string, argv ...string) testenv.Result {
	t.Helper()
	return testenv.Run(t, env, "unshare", append([]string{"--mount", "sh", "-c",
		`mount -t tmpfs none "$1" && mkdir "$1/lib" && mount -o remount,ro "$1" && shift && exec "$@"`, "sh", dir}, argv...)...)
}

// A data root on a read-only filesystem is one line that names it and
// says how to choose another; not the path of a lock file inside, twice.
func TestReadOnlyDataRootIsOneLine(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	env := append(testenv.StateEnv(t), "BERTH_DATA_ROOT="+dir+"/lib")
	r := readOnlyRun(t, env, dir, testenv.Binary(t, "08-image"), "import", testenv.Rootfs(t), "busybox")
	assert.Equal(t, 125, r.Code, r.String())
	assert.Equal(t, "08-image: the data root "+dir+"/lib is on a read-only filesystem: give a writable one with --data-root DIR (or $BERTH_DATA_ROOT)\n", r.Stderr)
}
