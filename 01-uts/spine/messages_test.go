//go:build linux

package spine

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"golang.org/x/sys/unix"

	"berth/internal/testenv"
)

// A state root on a read-only filesystem is one line, naming it and the
// flag that moves it.
func TestReadOnlyStateRootIsOneLine(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	r := testenv.Run(t, nil, "unshare", "--mount", "sh", "-c", `mount -t tmpfs -o ro none "$1" && shift && exec "$@"`, "sh", dir,
		testenv.Binary(t, "01-uts"), "run", "--root", dir+"/run", "true")
	assert.Equal(t, 125, r.Code, r.String())
	assert.Equal(t, "01-uts: the state root "+dir+"/run is on a read-only filesystem: give a writable one with --root DIR (or $BERTH_ROOT)\n", r.Stderr)
}

// Which root it is comes from the verb's flag, or the environment; a path
// under neither is said once.
func TestReadOnlyNamesTheRoot(t *testing.T) {
	cmd := &cobra.Command{Use: "x"}
	cmd.Flags().String("data-root", "", "")
	t.Setenv("BERTH_DATA_ROOT", "/env/lib")
	t.Setenv("BERTH_ROOT", "/env/run")
	erofs := func(path string) error {
		return fmt.Errorf("lock: %w", &fs.PathError{Op: "open", Path: path, Err: unix.EROFS})
	}
	assert.EqualError(t, readOnly(erofs("/env/lib/images/gc.lock"), cmd),
		"the data root /env/lib is on a read-only filesystem: give a writable one with --data-root DIR (or $BERTH_DATA_ROOT)")
	assert.EqualError(t, readOnly(erofs("/env/run/x/lock"), cmd),
		"the state root /env/run is on a read-only filesystem: give a writable one with --root DIR (or $BERTH_ROOT)")
	assert.EqualError(t, readOnly(erofs("/elsewhere/f"), cmd), "/elsewhere/f: read-only file system")
	assert.EqualError(t, readOnly(erofs("/env"), cmd), // mkdir of a parent of the root
		"the data root /env/lib is on a read-only filesystem: give a writable one with --data-root DIR (or $BERTH_DATA_ROOT)")

	flagged := filepath.Join(t.TempDir(), "lib")
	assert.NoError(t, cmd.Flags().Set("data-root", flagged))
	assert.EqualError(t, readOnly(erofs(flagged+"/layers"), cmd),
		"the data root "+flagged+" is on a read-only filesystem: give a writable one with --data-root DIR (or $BERTH_DATA_ROOT)")
	other := fmt.Errorf("no: %w", os.ErrPermission)
	assert.Equal(t, other, readOnly(other, cmd))
}
