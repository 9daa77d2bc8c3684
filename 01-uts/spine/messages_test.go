//go:build linux

package spine

import (
	"testing"

	"github.com/stretchr/testify/assert"

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
