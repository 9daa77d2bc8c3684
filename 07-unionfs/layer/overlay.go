//go:build linux

package layer

import (
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Overlay takes its whole configuration as one string of mount data, and
// the kernel copies at most one page of it (4096 bytes here). With absolute
// paths like /var/lib/berth/layers/sha256/<64 hex>/ a stack of about 40
// layers no longer fits. Docker's overlay2 solves it with short names:
// every layer gets a symlink l/<short id> -> its directory, and the mount
// names l/<short id> relative to the storage directory after a chdir
// there. Each lower then costs 15 bytes ("l/" + 12 + ":"), so 100 layers take
// 1,500 bytes and overlay's own limit (500 lowers) comes first.
//
// The chdir is the delicate part. In a Go program every thread shares one
// working directory (threads are created with CLONE_FS), so a chdir in one
// goroutine would move the others' relative paths under their feet. Docker
// re-executes itself as a helper process that chdirs and mounts. We get the
// same isolation without a new process: a goroutine locks itself to its OS
// thread, calls unshare(CLONE_FS) so that thread gets its own copy of the
// working directory, chdirs and mounts, and then ends without unlocking,
// which makes the Go runtime end the thread too, taking its private working
// directory with it. (Kernels >= 6.8 also accept lowers one by one with
// fsconfig "lowerdir+", with no page limit at all; 6.1, the VM's, does not.)

const linkDir = "l"

// shortLink returns "l/<short id>" for a layer directory of a container,
// creating the symlink under the storage root if needed. Each container
// has its own links, removed with it: --layers may name any directory of
// the host, and a link must not outlive the container that made it.
func shortLink(root, id, target string) (string, error) {
	rel := linkName(id, target)
	p := filepath.Join(root, rel)
	if got, err := os.Readlink(p); err == nil {
		if got == target {
			return rel, nil
		}
		return "", fmt.Errorf("layer link %s points to %s, not %s", p, got, target)
	}
	if err := os.MkdirAll(filepath.Join(root, linkDir), 0o700); err != nil {
		return "", err
	}
	// Made under a temporary name and renamed: two runs creating the same
	// link at once both succeed.
	tmp := fmt.Sprintf("%s.tmp%d", p, os.Getpid())
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return "", fmt.Errorf("create layer link: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("create layer link: %w", err)
	}
	return rel, nil
}

// linkName is the short name of a container's layer directory: 12 base32
// digits of the sha256 of both, unique enough for one store.
func linkName(id, target string) string {
	sum := sha256.Sum256([]byte(id + "\x00" + target))
	return linkDir + "/" + base32.StdEncoding.EncodeToString(sum[:])[:12]
}

// overlayData builds the mount data. lowers are relative to the storage
// root (l/<id>), top first, as overlay wants them; upper and work too.
// index, redirect_dir and metacopy are turned off explicitly: with them the
// upper directory is no longer a plain list of changes (a renamed directory
// would be a redirect xattr, a chmod a metadata-only copy), and commit
// could not turn it into a layer tarball. redirect_dir=nofollow rather
// than off: where the module has redirect_always_follow=Y (Debian), "off"
// means "follow", which a userxattr mount refuses; nofollow creates no
// redirects and follows none (our layers never carry one: apply drops
// overlay xattrs).
func overlayData(lowers []string, upper, work string, userxattr bool) (string, error) {
	data := "lowerdir=" + strings.Join(lowers, ":") +
		",upperdir=" + upper + ",workdir=" + work +
		",index=off,redirect_dir=nofollow,metacopy=off"
	if userxattr {
		data += ",userxattr"
	}
	if limit := os.Getpagesize() - 1; len(data) > limit {
		return "", fmt.Errorf("overlay mount data for %d layers is %d bytes, over the kernel's limit of %d", len(lowers), len(data), limit)
	}
	return data, nil
}

// mountOverlay mounts overlay on target with data whose paths are
// relative to root (see the file comment for why this is safe in Go).
func mountOverlay(root, target, data string) error {
	err := inDir(root, func() error {
		return unix.Mount("overlay", target, "overlay", 0, data)
	})
	if err != nil {
		return fmt.Errorf("mount overlay on %s (in %s, %s): %w", target, root, data, err)
	}
	return nil
}

// inDir runs fn on a thread of its own whose working directory is dir.
func inDir(dir string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// No UnlockOSThread: when this goroutine returns, the runtime
		// ends the thread, and its private working directory with it.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_FS): %w", err)
			return
		}
		if err := unix.Chdir(dir); err != nil {
			errc <- fmt.Errorf("chdir %s: %w", dir, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// unmount is idempotent: a path that is not mounted (or missing) is fine.
// A mount still busy is detached, so nothing can reach it from here on.
func unmount(target string) error {
	err := unix.Unmount(target, 0)
	switch {
	case err == nil, errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.EBUSY):
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("umount -l %s: %w", target, err)
		}
		return nil
	default:
		return fmt.Errorf("umount %s: %w", target, err)
	}
}

// isMountpoint: an overlay (or any other mount) has its own device number.
func isMountpoint(p string) bool {
	var a, b unix.Stat_t
	if unix.Lstat(p, &a) != nil || unix.Lstat(filepath.Dir(p), &b) != nil {
		return false
	}
	return a.Dev != b.Dev
}

// userXattrs checks that dir's filesystem takes user.* extended
// attributes, where an overlay mounted with userxattr marks opaque
// directories. Without them (tmpfs before Linux 6.6) overlay still mounts
// but cannot mark one: re-creating a deleted directory then fails with EIO.
func userXattrs(dir string) error {
	const probe = "user.berth.probe"
	if err := unix.Lsetxattr(dir, probe, []byte("y"), 0); err != nil {
		return fmt.Errorf("set %s on %s: %w", probe, dir, err)
	}
	return unix.Lremovexattr(dir, probe)
}
