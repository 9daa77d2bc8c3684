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
	if len(m) == 0 {
		return nil
	}
	dir, err := openHandle("/proc/sys")
	if err != nil {
		return fmt.Errorf("sysctl: %w", err)
	}
	defer unix.Close(dir)
	var st unix.Statfs_t
	if err := unix.Fstatfs(dir, &st); err != nil || st.Type != unix.PROC_SUPER_MAGIC {
		return fmt.Errorf("sysctl: /proc/sys in the container is not procfs")
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		// Beneath /proc/sys and on the same mount, whatever the key says
		// (CheckSysctl already refused anything but dotted words).
		p := strings.ReplaceAll(k, ".", "/")
		how := unix.OpenHow{Flags: unix.O_WRONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_TRUNC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV}
		fd, err := unix.Openat2(dir, p, &how)
		if err != nil {
			return fmt.Errorf("sysctl %s: open /proc/sys/%s: %w", k, p, err)
		}
		_, err = unix.Write(fd, []byte(m[k]))
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, m[k], err)
		}
	}
	return nil
}
