//go:build linux

package engine

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"berth/01-uts/spine"
)

func init() { spine.Register("user", func() spine.Step { return &UserStep{} }) }

// UserStep carries out the spec's process.user and working directory: it
// makes the working directory if the root lacks it (as Docker does for an
// image's WORKDIR or -w), and, the very last thing before the security
// steps and the command, sets the umask, the groups, the group and the
// user. Every step before it needed root in the container. (Stage 08's
// image step does the same for 08's own runs; stage 09 takes the user
// from the spec, wherever the spec came from.)
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

// PreExec sets the groups, then the group, then the user: the order in
// which each call is still allowed. x/sys/unix changes the calling thread
// only, which is the thread that executes the command (the init locked it).
func (*UserStep) PreExec(c *spine.Container) error {
	u := c.Spec.Process.User
	if u.Umask != nil {
		unix.Umask(int(*u.Umask))
	}
	if u.UID == 0 && u.GID == 0 && len(u.AdditionalGids) == 0 {
		return nil
	}
	gids := make([]int, 0, len(u.AdditionalGids))
	for _, g := range u.AdditionalGids {
		gids = append(gids, int(g))
	}
	// A user namespace that denies setgroups (a rootless map of one id)
	// refuses even an empty list: then there is nothing to drop anyway.
	if err := unix.Setgroups(gids); err != nil && !(len(gids) == 0 && errors.Is(err, unix.EPERM)) {
		return fmt.Errorf("setgroups %v: %w", gids, err)
	}
	if err := unix.Setresgid(int(u.GID), int(u.GID), int(u.GID)); err != nil {
		return fmt.Errorf("setgid %d: %w (is the group mapped in the user namespace?)", u.GID, err)
	}
	if err := unix.Setresuid(int(u.UID), int(u.UID), int(u.UID)); err != nil {
		return fmt.Errorf("setuid %d: %w (is the user mapped in the user namespace?)", u.UID, err)
	}
	c.Logf("user: running as uid %d gid %d groups %v", u.UID, u.GID, u.AdditionalGids)
	return nil
}
