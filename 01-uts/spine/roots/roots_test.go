package roots

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"golang.org/x/sys/unix"
)

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
	assert.EqualError(t, ReadOnly(erofs("/env/lib/images/gc.lock"), cmd),
		"the data root /env/lib is on a read-only filesystem: give a writable one with --data-root DIR (or $BERTH_DATA_ROOT)")
	assert.EqualError(t, ReadOnly(erofs("/env/run/x/lock"), cmd),
		"the state root /env/run is on a read-only filesystem: give a writable one with --root DIR (or $BERTH_ROOT)")
	assert.EqualError(t, ReadOnly(erofs("/elsewhere/f"), cmd), "/elsewhere/f: read-only file system")
	assert.EqualError(t, ReadOnly(erofs("/env"), cmd), // mkdir of a parent of the root
		"the data root /env/lib is on a read-only filesystem: give a writable one with --data-root DIR (or $BERTH_DATA_ROOT)")

	flagged := filepath.Join(t.TempDir(), "lib")
	assert.NoError(t, cmd.Flags().Set("data-root", flagged))
	assert.EqualError(t, ReadOnly(erofs(flagged+"/layers"), cmd),
		"the data root "+flagged+" is on a read-only filesystem: give a writable one with --data-root DIR (or $BERTH_DATA_ROOT)")
	other := fmt.Errorf("no: %w", os.ErrPermission)
	assert.Equal(t, other, ReadOnly(other, cmd))
}
