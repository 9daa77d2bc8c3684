//go:build linux

package layer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// OpenDetached returns a descriptor of a stopped container's root, its
// layers as the container would see them, without attaching anything to
// any directory: for the copy driver its diff directory; for overlay a
// new overlay instance made with the mount API (fsopen, fsconfig,
// fsmount) that lives in no mount namespace, only behind the descriptor
// returned, and goes when that is closed. berth cp reads and writes a
// stopped container's files through it. The caller makes sure the
// container does not start meanwhile (its lock): two overlays over one
// upper directory show undefined results.
func (s Store) OpenDetached(r *Record) (int, error) {
	if r.Driver == DriverCopy {
		fd, err := unix.Open(s.diffDir(r.ID), unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, fmt.Errorf("open %s: %w", s.diffDir(r.ID), err)
		}
		return fd, nil
	}
	if err := os.Mkdir(s.workDir(r.ID), 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return -1, err // a layer made but never mounted has none yet
	}
	var lowers []string
	for _, l := range unionStack(s.stack(r)) {
		rel, err := shortLink(s.Root, r.ID, l)
		if err != nil {
			return -1, err
		}
		lowers = append(lowers, rel)
	}
	c := filepath.Join("containers", r.ID)
	if _, err := overlayData(lowers, filepath.Join(c, "diff"), filepath.Join(c, "work"), r.Userxattr); err != nil {
		return -1, err // the same page limit
	}
	params := [][2]string{
		{"lowerdir", strings.Join(lowers, ":")},
		{"upperdir", filepath.Join(c, "diff")},
		{"workdir", filepath.Join(c, "work")},
		{"index", "off"}, {"redirect_dir", "nofollow"}, {"metacopy", "off"},
	}
	mfd := -1
	// The paths are relative to the store (short names): resolved on a
	// thread whose working directory is the store's (overlay.go:inDir).
	err := inDir(s.Root, func() error {
		fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
		if err != nil {
			return fmt.Errorf("fsopen overlay: %w", err)
		}
		defer unix.Close(fsfd)
		for _, p := range params {
			if err := unix.FsconfigSetString(fsfd, p[0], p[1]); err != nil {
				return fmt.Errorf("fsconfig %s=%s: %w", p[0], p[1], err)
			}
		}
		if r.Userxattr {
			if err := unix.FsconfigSetFlag(fsfd, "userxattr"); err != nil {
				return fmt.Errorf("fsconfig userxattr: %w", err)
			}
		}
		if err := unix.FsconfigCreate(fsfd); err != nil {
			return fmt.Errorf("create overlay of %s: %w", c, err)
		}
		// No device, no setuid, no exec through this mount: it is only
		// ever read and written, by berth.
		mfd, err = unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC,
			unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC)
		if err != nil {
			return fmt.Errorf("fsmount overlay of %s: %w", c, err)
		}
		return nil
	})
	if err != nil {
		return -1, err
	}
	return mfd, nil
}
