//go:build linux

package security_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// TestRootless runs the same defaults without root. The container's root
// is root of a user namespace and holds every capability there; the
// defaults bring it down to Docker's set and add the same seccomp filter.
// The device cgroup does not apply: an ordinary user has no cgroup to
// write (and cannot mknod in a user namespace anyway).
func TestRootless(t *testing.T) {
	testenv.RequireRoot(t)
	secrun, breakcheck := build(t)
	a := testenv.NewAccount(t, "berth09s", true)
	root := a.Rootfs(t)
	copyFile(t, breakcheck, filepath.Join(root, "bin", "breakcheck"), 0o755)
	out, err := exec.Command("chown", fmt.Sprintf("%d:%d", a.UID, a.GID), filepath.Join(root, "bin", "breakcheck")).CombinedOutput()
	require.NoError(t, err, string(out))
	runAs := func(t *testing.T, args ...string) testenv.Result {
		t.Helper()
		return a.Run(t, nil, secrun, append([]string{"run", "--net", "none", "--rootfs", root}, args...)...)
	}

	t.Run("status", func(t *testing.T) {
		st := status(t, runAs(t, "sh", "-c", statusCmd))
		assert.Equal(t, dockerCaps, st["CapEff"])
		assert.Equal(t, dockerCaps, st["CapPrm"])
		assert.Equal(t, dockerCaps, st["CapBnd"])
		assert.Equal(t, "0000000000000000", st["CapInh"])
		assert.Equal(t, "0000000000000000", st["CapAmb"])
		assert.Equal(t, "0", st["NoNewPrivs"])
		assert.Equal(t, "2", st["Seccomp"])
		assert.Equal(t, "0", st["uid"], "root inside")
	})

	t.Run("breakcheck", func(t *testing.T) {
		v := verdicts(t, runAs(t, "breakcheck", "-k"))
		for check, why := range mustBeRefused {
			if v[check] == "n/a" {
				continue
			}
			assert.Equal(t, "refused", v[check], "%s must be refused (%s)", check, why)
		}
		assert.Equal(t, "refused", v["nosys"])
	})

	t.Run("cap-add SYS_ADMIN mounts in its own namespace", func(t *testing.T) {
		v := verdicts(t, runAs(t, "--cap-add", "SYS_ADMIN", "breakcheck", "-k", "mount_tmpfs", "adjtimex"))
		assert.Equal(t, "allowed", v["mount_tmpfs"])
		assert.Equal(t, "refused", v["adjtimex"], "the clock is the host's: no capability in a user namespace reaches it")
	})

	t.Run("privileged is still a user namespace", func(t *testing.T) {
		r := runAs(t, "--privileged", "breakcheck", "-k")
		t.Logf("rootless --privileged:\n%s", r.Stdout)
		v := verdicts(t, r)
		assert.Equal(t, "allowed", v["mount_tmpfs"], "in its own mount namespace")
		assert.Equal(t, "allowed", v["keyctl"], "no seccomp filter")
		assert.Equal(t, "refused", v["adjtimex"], "the clock is the host's")
		assert.Equal(t, "refused", v["core_pattern"], "/proc/sys belongs to the host's root")
		assert.Equal(t, "refused", v["kmsg"], "no mknod in a user namespace")
		assert.Equal(t, "refused", v["syslog"], "the kernel log is the host's")
	})

	t.Run("masked and read-only paths", func(t *testing.T) {
		r := runAs(t, "sh", "-c", "wc -c < /proc/timer_list; echo x > /proc/sysrq-trigger || echo refused")
		require.Equal(t, 0, r.Code, r.String())
		assert.Equal(t, "0\nrefused\n", r.Stdout)
	})

	t.Run("a user of the subordinate range, no capabilities", func(t *testing.T) {
		st := status(t, runAs(t, "--map-subids", "--user", "1000", "--cap-drop", "ALL", "sh", "-c", statusCmd))
		for _, set := range []string{"CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"} {
			assert.Equal(t, "0000000000000000", st[set], set)
		}
		assert.Equal(t, "1000", st["uid"])
		assert.Equal(t, "2", st["Seccomp"])
	})

	t.Run("an unmapped user is refused", func(t *testing.T) {
		r := runAs(t, "--user", "1000", "true")
		assert.Equal(t, 125, r.Code, r.String())
		assert.Contains(t, r.Stderr, "not mapped in the container's user namespace")
		assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.Stderr), "\n")+1, r.Stderr)
	})
}
