//go:build linux

package security

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// switchUser becomes process.user: supplementary groups, then the group,
// then the user (setuid last: once it is done, the process may no longer
// change its groups). Go's syscall.Setgroups, Setresgid and Setresuid act
// on every thread of the process, as the C library's do; golang.org/x/sys
// has raw versions that would change only the calling thread.
func switchUser(u specs.User) error {
	gids := make([]int, len(u.AdditionalGids))
	for i, g := range u.AdditionalGids {
		gids[i] = int(g)
	}
	if err := syscall.Setgroups(gids); err != nil {
		// In a user namespace whose setgroups is "deny" (an unprivileged
		// user mapped only their own id), there are no groups to drop,
		// and none may be added.
		if !errors.Is(err, unix.EPERM) || len(gids) > 0 || !setgroupsDenied() {
			return fmt.Errorf("setgroups(%v): %w", gids, err)
		}
	}
	if err := syscall.Setresgid(int(u.GID), int(u.GID), int(u.GID)); err != nil {
		return fmt.Errorf("setresgid(%d): %w%s", u.GID, err, unmapped(err, "gid", u.GID))
	}
	if err := syscall.Setresuid(int(u.UID), int(u.UID), int(u.UID)); err != nil {
		return fmt.Errorf("setresuid(%d): %w%s", u.UID, err, unmapped(err, "uid", u.UID))
	}
	if u.Umask != nil {
		unix.Umask(int(*u.Umask & 0o777))
	}
	return nil
}

func unmapped(err error, kind string, id uint32) string {
	if errors.Is(err, unix.EINVAL) {
		return fmt.Sprintf(" (%s %d is not mapped in the container's user namespace)", kind, id)
	}
	return ""
}

func setgroupsDenied() bool {
	b, err := os.ReadFile("/proc/self/setgroups")
	return err == nil && strings.TrimSpace(string(b)) == "deny"
}
