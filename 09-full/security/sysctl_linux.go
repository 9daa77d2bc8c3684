//go:build linux

package security

import (
	"fmt"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// writeSysctls writes linux.sysctl under the container's /proc/sys: the
// container's own namespaces (IPC, network, UTS) hold these settings, so
// they change only the container. Done before /proc/sys is made read-only.
func writeSysctls(m map[string]string) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		how := unix.OpenHow{Flags: unix.O_WRONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_TRUNC,
			Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV}
		fd, err := unix.Openat2(unix.AT_FDCWD, p, &how)
		if err != nil {
			return fmt.Errorf("sysctl %s: open %s: %w", k, p, err)
		}
		_, err = unix.Write(fd, []byte(m[k]))
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, m[k], err)
		}
	}
	return nil
}
