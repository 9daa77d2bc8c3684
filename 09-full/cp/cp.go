//go:build linux

// Package cp copies files into and out of a container's root, as
// `docker cp` does, through handles: the container controls its tree, and
// may swap any directory for a symlink at any moment (CVE-2018-15664, in
// Docker's cp). So a path inside the container is never joined to
// /proc/PID/root and handed to open(2) — the kernel would follow an
// absolute symlink there from the HOST's root. It is resolved once, by
// openat2(RESOLVE_IN_ROOT) beneath a descriptor of the container's root:
// "/" and ".." stop at that root, and symlinks resolve as the container
// sees them. From the directory that gives, every name is opened one at a
// time with O_NOFOLLOW: a name that becomes a symlink mid-copy is refused,
// never followed; what is written is created with O_EXCL, and what was
// there is removed first, never written through.
package cp

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A Root is a container's root directory, held open.
type Root struct {
	fd int
	// uids and gids map the container's ids to the host's (a user
	// namespace); empty: the same.
	uids, gids []specs.LinuxIDMapping
	// FollowLink (cp -L): a symlink named as the source is followed —
	// in the container's root for a source there — and its target copied
	// under the symlink's name.
	FollowLink bool
	// Warn is told of what is skipped (devices, sockets).
	Warn func(format string, args ...any)
}

// OpenRoot opens the root of the container whose init is pid, as its
// mount namespace shows it (/proc/PID/root, a magic link the kernel
// resolves to that directory and no further).
func OpenRoot(pid int, spec *specs.Spec) (*Root, error) {
	p := fmt.Sprintf("/proc/%d/root", pid)
	fd, err := unix.Open(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open the container's root %s: %w", p, err)
	}
	return NewRoot(fd, spec), nil
}

// NewRoot takes fd, a descriptor of a container's root directory (a
// stopped container's, layer.Store.OpenDetached), as a Root; Close closes
// it.
func NewRoot(fd int, spec *specs.Spec) *Root {
	r := &Root{fd: fd, Warn: func(string, ...any) {}}
	if spec != nil && spec.Linux != nil {
		r.uids, r.gids = spec.Linux.UIDMappings, spec.Linux.GIDMappings
	}
	return r
}

// Close closes the root.
func (r *Root) Close() { unix.Close(r.fd) }

// resolve opens p (absolute, inside the container) beneath the root, every
// symlink on the way resolved as the container would, but never above its
// root, and no magic link (/proc/self/fd/N) followed.
func (r *Root) resolve(p string, flags int) (int, error) {
	how := &unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	rel := strings.TrimPrefix(path.Clean("/"+p), "/")
	if rel == "" {
		rel = "."
	}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(r.fd, rel, how)
		if (errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR)) && i < 100 {
			continue
		}
		return fd, err
	}
}

// parent resolves the directory of p and returns it with p's last name.
func (r *Root) parent(p string) (dir int, name string, err error) {
	clean := path.Clean("/" + p)
	if clean == "/" {
		return -1, "", errors.New("the container's root itself: name a path in it")
	}
	dir, err = r.resolve(path.Dir(clean), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return -1, "", fmt.Errorf("%s: %w", path.Dir(clean), err)
	}
	return dir, path.Base(clean), nil
}

// hostID maps a container id to the host's through m.
func hostID(m []specs.LinuxIDMapping, id uint32) int {
	if len(m) == 0 {
		return int(id)
	}
	for _, x := range m {
		if id >= x.ContainerID && id-x.ContainerID < x.Size {
			return int(x.HostID + id - x.ContainerID)
		}
	}
	return -1
}

// isDir reports whether a host path is a directory (following symlinks:
// the host's paths are the user's).
func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
