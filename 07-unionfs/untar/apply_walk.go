//go:build linux

package untar

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"berth/07-unionfs/tree"
)

// A pendingDir is a directory of the layer being applied, in a tree of
// names: its metadata, set at the end, and its subdirectories. One node
// per directory, whatever the depth: a list of full paths would grow with
// the square of the depth (10,000 nested directories took 1.7 GB), and a
// directory replaced by a later entry is forgotten with its subtree by
// deleting one node.
type pendingDir struct {
	children map[string]*pendingDir
	meta     *meta // nil: made by the walker as a parent, nothing to set
}

// add records the metadata of the directory parts (a later entry for the
// same directory replaces it, as tar would).
func (n *pendingDir) add(parts []string, m *meta) {
	for _, p := range parts {
		c := n.children[p]
		if c == nil {
			if n.children == nil {
				n.children = map[string]*pendingDir{}
			}
			c = &pendingDir{}
			// A copy: a slice of the entry's name would keep all of it.
			n.children[strings.Clone(p)] = c
		}
		n = c
	}
	n.meta = m
}

// forget drops name in the directory dirParts and everything below it.
func (n *pendingDir) forget(dirParts []string, name string) {
	for _, p := range dirParts {
		if n = n.children[p]; n == nil {
			return
		}
	}
	delete(n.children, name)
}

// applyDirs sets the kept metadata of the directory open at fd and of
// those below it, children first (setting a child's times does not move
// its parent's, but making it did). Each is opened from its parent with
// O_NOFOLLOW|O_DIRECTORY: a directory replaced by a symlink was forgotten,
// and were one missed, the open would fail rather than follow it.
func (x *extractor) applyDirs(fd int, n *pendingDir, names []string) error {
	for name, c := range n.children {
		cfd, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("apply: directory %q: %w: %w", tree.ShortName(strings.Join(append(names, name), "/")), ErrUnsafe, err)
		}
		err = x.applyDirs(cfd, c, append(names, name))
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	if n.meta == nil {
		return nil
	}
	h := tree.Handle{Fd: fd}
	if err := unix.Fstat(fd, &h.Stat); err != nil {
		return fmt.Errorf("apply: fstat: %w", err)
	}
	if err := x.setMeta(h, n.meta); err != nil {
		return fmt.Errorf("apply: directory %q: %w", tree.ShortName(strings.Join(names, "/")+"/"), err)
	}
	return nil
}

// A walker holds the open directory fds of the last path it resolved, so
// that the next path only opens the names it does not share with it. It
// refuses symlinks on the way instead of following them.
type walker struct {
	root  int
	names []string
	fds   []int
	// overWhiteout makes a directory where the layer has a whiteout of
	// the same name (.wh.d, then d/f).
	overWhiteout func(parent int, name string) error
}

// dir returns an fd for the directory parts (relative to root), creating
// missing directories (mode 0755, as OCI's implied directories). The fd
// belongs to the walker: valid until its next call.
func (w *walker) dir(parts []string) (int, error) {
	common := 0
	for common < len(parts) && common < len(w.names) && parts[common] == w.names[common] {
		common++
	}
	w.truncate(common)
	for _, name := range parts[common:] {
		parent := w.root
		if n := len(w.fds); n > 0 {
			parent = w.fds[n-1]
		}
		fd, err := w.open(parent, name)
		if err != nil {
			return -1, err
		}
		// A copy: the walker keeps the names of its path, and a slice of
		// each entry's name would keep all of it, one per level.
		w.names = append(w.names, strings.Clone(name))
		w.fds = append(w.fds, fd)
	}
	if len(w.fds) == 0 {
		return w.root, nil
	}
	return w.fds[len(w.fds)-1], nil
}

func (w *walker) open(parent int, name string) (int, error) {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	where := func() string { return tree.ShortName(strings.Join(append(w.names, name), "/")) }
	fd, err := unix.Openat(parent, name, flags, 0)
	if errors.Is(err, unix.ENOENT) {
		if err := unix.Mkdirat(parent, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, fmt.Errorf("mkdir %s: %w", where(), err)
		}
		fd, err = unix.Openat(parent, name, flags, 0)
	}
	if errors.Is(err, unix.ENOTDIR) {
		var st unix.Stat_t
		if unix.Fstatat(parent, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && tree.IsWhiteout(&st) {
			if err := w.overWhiteout(parent, name); err != nil {
				return -1, fmt.Errorf("directory %s over a whiteout: %w", where(), err)
			}
			fd, err = unix.Openat(parent, name, flags, 0)
		}
	}
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		return -1, fmt.Errorf("%w: parent %s is a symlink or not a directory", ErrUnsafe, where())
	}
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", where(), err)
	}
	return fd, nil
}

func (w *walker) truncate(n int) {
	for i := len(w.fds) - 1; i >= n; i-- {
		unix.Close(w.fds[i])
	}
	w.fds = w.fds[:n]
	w.names = w.names[:n]
}

func (w *walker) reset() { w.truncate(0) }
