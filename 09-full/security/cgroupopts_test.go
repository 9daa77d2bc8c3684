//go:build linux

package security

import "testing"

// A cgroup2 mount made from the host's cgroup namespace sets the one
// superblock's options again: the view must carry the host's, or it
// turns off nsdelegate for the whole host (tools/vmtest/guest's
// TestPureCgroupV2 caught a berth-oci bundle without a cgroup namespace
// doing it).
func TestCgroup2Options(t *testing.T) {
	for _, c := range []struct{ name, mountinfo, want string }{
		{"systemd's", "24 1 0:21 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n", "nsdelegate,memory_recursiveprot"},
		{"hybrid's unified", "30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n31 25 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n", "nsdelegate"},
		{"none", "31 25 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n", ""},
		{"plain", "32 24 0:25 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", ""},
		{"a bind with a space in its path", `40 24 0:25 /a\040b /mnt rw - cgroup2 cgroup2 rw,favordynmods` + "\n", "favordynmods"},
	} {
		if got := cgroup2Options(c.mountinfo); got != c.want {
			t.Errorf("%s: cgroup2Options = %q, want %q", c.name, got, c.want)
		}
	}
}
