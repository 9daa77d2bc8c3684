//go:build linux

package engine

import (
	"fmt"
	"os"

	"berth/01-uts/spine"
)

func init() { spine.Register("user", func() spine.Step { return &UserStep{} }) }

// UserStep makes the spec's working directory if the root lacks it (as
// Docker does for an image's WORKDIR or -w). The switch to process.user
// is 09-full/security's (Finalize): it must come after the bounding set
// is dropped, which needs root's CAP_SETPCAP, and before the capability
// sets and the seccomp filter. (Stage 08's image step switches the user
// for 08's own runs.)
type UserStep struct{}

func (*UserStep) Name() string { return "user" }

// Child runs after stage 03's pivot_root: the path resolves in the
// container, never on the host.
func (*UserStep) Child(c *spine.Container) error {
	cwd := c.Spec.Process.Cwd
	if cwd == "" || cwd == "/" {
		return nil
	}
	if _, err := os.Stat(cwd); err == nil {
		return nil
	}
	if err := os.MkdirAll(cwd, 0o755); err != nil {
		return fmt.Errorf("make the working directory %s: %w", cwd, err)
	}
	c.Logf("user: made the working directory %s", cwd)
	return nil
}
