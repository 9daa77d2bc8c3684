//go:build linux

package layer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"berth/internal/lockfile"
)

// Whether overlay can use the store's filesystem for upper directories is
// learnt by mounting one (probeOverlay): nothing else is reliable (overlay
// on overlay, on 9p, on an old kernel in a user namespace). The probe
// costs a few milliseconds and leaves a directory behind when the runtime
// is killed in the middle, maybe still mounted. So:
//
//   - the answer "it mounts" is remembered in <data-root>/layers/overlay-probe
//     with the boot's id and the filesystem's device and type: the kernel
//     and the filesystem are what it depends on, and either changing (a
//     reboot, another filesystem mounted on the data root) makes it stale.
//     It sits beside what was probed rather than under the state root,
//     whose every entry the next run's collection takes for a container.
//     "It does not mount" is not remembered: the copy driver is slow
//     anyway, and a module loaded later should be found.
//   - probes take turns under layers/probe.lock, and each starts by
//     removing every probe-* directory it finds (unmounting it first):
//     with the lock held, only a killed probe can have left one.
//
// A killed probe never writes the file, so the next run probes again and
// collects what it left.

const (
	probeFile = "overlay-probe"
	probeLock = "probe.lock"
)

// overlayMounts reports whether overlay mounts on the store's filesystem,
// from what this boot has learnt or by probing; remembered says which.
func overlayMounts(root string) (remembered bool, err error) {
	key := probeKey(root)
	if key != "" && readProbe(root) == key {
		return true, nil
	}
	lock, err := lockfile.Acquire(context.Background(), filepath.Join(root, probeLock), lockfile.Exclusive)
	if err != nil {
		return false, fmt.Errorf("overlay probe: %w", err)
	}
	defer lock.Unlock()
	if key != "" && readProbe(root) == key {
		return true, nil // another run probed while this one waited
	}
	if err := removeProbes(root); err != nil {
		return false, err
	}
	if err := probeOverlay(root, false); err != nil {
		return false, err
	}
	if key != "" {
		_ = writeProbe(root, key) // a cache: on failure the next run probes again
	}
	return false, nil
}

// probeKey names this boot and the filesystem of root ("" if unknown:
// then nothing is remembered).
func probeKey(root string) string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	var st unix.Stat_t
	var fs unix.Statfs_t
	if unix.Stat(root, &st) != nil || unix.Statfs(root, &fs) != nil {
		return ""
	}
	return fmt.Sprintf("mounts boot=%s dev=%d:%d fs=%#x\n", strings.TrimSpace(string(boot)), unix.Major(st.Dev), unix.Minor(st.Dev), fs.Type)
}

func readProbe(root string) string {
	b, _ := os.ReadFile(filepath.Join(root, probeFile))
	return string(b)
}

func writeProbe(root, key string) error {
	tmp := filepath.Join(root, "."+probeFile+".tmp")
	if err := os.WriteFile(tmp, []byte(key), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(root, probeFile))
}

// removeProbes removes what killed probes left: unmounted first, so that
// nothing is removed through a live overlay.
func removeProbes(root string) error {
	dirs, err := filepath.Glob(filepath.Join(root, "probe-*"))
	if err != nil {
		return err
	}
	for _, d := range dirs {
		merged := filepath.Join(d, "merged")
		if err := unmount(merged); err != nil {
			return fmt.Errorf("overlay probe left by a killed run: %w", err)
		}
		if isMountpoint(merged) {
			return fmt.Errorf("overlay probe left by a killed run: %s is still mounted", merged)
		}
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("overlay probe left by a killed run: %w", err)
		}
	}
	return nil
}

// probeOverlay mounts a one-layer overlay under root and unmounts it:
// the only reliable test that overlay works with upper directories on this
// filesystem (it does not on overlay itself before 5.x tricks, nor on 9p).
func probeOverlay(root string, userxattr bool) error {
	dir, err := os.MkdirTemp(root, "probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			return err
		}
	}
	rel := filepath.Base(dir)
	data, err := overlayData([]string{rel + "/lower"}, rel+"/upper", rel+"/work", userxattr)
	if err != nil {
		return err
	}
	merged := filepath.Join(dir, "merged")
	if err := mountOverlay(root, merged, data); err != nil {
		return err
	}
	return unmount(merged)
}
