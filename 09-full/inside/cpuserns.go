//go:build linux

package inside

import (
	"fmt"
	"os"
	"strings"

	"berth/07-unionfs/layer"
	"berth/09-full/clikit"
	"berth/09-full/engine"
)

// A stopped rootless container's overlay (userxattr) mounts only in a
// mount namespace its user namespace owns: the user's berth cannot mount
// it where it runs. So, as rm and diff of such a layer do
// (07-unionfs/layer/unshare.go), berth cp runs again there, in a new user
// namespace with the container's maps and a new mount namespace
// (layer.Store.RunInUserns), where it is the container's root: it mounts
// the detached overlay (layer.Store.OpenDetached) and copies through
// package cp's handles as root's cp does — every path in the container
// resolved by openat2(RESOLVE_IN_ROOT) beneath it, so a symlink the
// container planted in its upper directory resolves in its root, never to
// the host's files. The host's side is reached with no more than the
// user's rights (and those of the ids the maps give, which newuidmap gives
// the user anyway). The first run holds the container's lock while the
// second copies, so that the container does not start meanwhile.

// envCpInside marks cp's second run, inside the user namespace.
const envCpInside = "_BERTH_CP_IN_USERNS"

// cpInsideUserns: this is cp's second run. The mark counts only inside a
// user namespace that is not the host's: set by hand in the host's, it
// would skip the container's lock, and it is ignored.
func cpInsideUserns() bool {
	if os.Getenv(envCpInside) != "1" {
		return false
	}
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return !(len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295")
}

// cpInUserns runs this berth cp again in the container's user namespace
// (a new one with its maps) and a mount namespace of its own; the second
// run says what went wrong itself, and its exit code is ours. The roots
// are passed on: without them, the second run, root in its namespace,
// would take root's.
func cpInUserns(e *engine.Engine, layers layer.Store, lrec *layer.Record) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cp: find berth's executable: %w", err)
	}
	cwd, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("cp: working directory: %w", err)
	}
	argv := append([]string{exe, "--data-root", e.DataRoot, "--root", e.StateRoot}, os.Args[1:]...)
	code, err := layers.RunInUserns(lrec, argv, []string{envCpInside + "=1"}, cwd)
	if err != nil {
		return fmt.Errorf("cp: in a user namespace with container %s's maps: %w", lrec.ID[:12], err)
	}
	if code != 0 {
		return clikit.Silent(code)
	}
	return nil
}
