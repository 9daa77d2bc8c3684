//go:build linux

// Package tree reads and changes directory trees that someone else wrote
// (a layer of an image, a container's upper directory or its copy) through
// file descriptors, never by path: a Tree resolves every path beneath the
// fd of its root with no symlink followed, a Handle is one inode whose
// metadata is read and set through its own fd, and a Stack reads layers
// in overlay's format (whiteouts, opaque directories) merged as overlay
// would show them, from user space. Stage 07's layer store, its extractor
// (untar) and its diff and commit are built on it. Chapter:
// docs/07-unionfs.md, "Reading what someone else wrote: trees and handles".
package tree

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// A Tree is a directory whose contents someone else wrote: a layer, a
// container's upper directory or its copy. It is reached through the fd of
// its root, and every path in it is resolved beneath that fd by the kernel
// with openat2(RESOLVE_NO_SYMLINKS|RESOLVE_BENEATH): no symlink on the way,
// the last name included, is ever followed, and nothing above the root is
// reached. (Before Linux 5.6, which has no openat2, the same walk is made
// one name at a time with openat(O_NOFOLLOW).) So a path that was a
// directory when it was listed and is a symlink to / by the time it is
// opened is refused, not followed, and a tree of any depth costs one open
// fd, not one per level.
//
// The kernel resolves at most PATH_MAX-1 bytes at once: a path deeper than
// that is refused in one line (ErrTooDeep), as Docker's path-based code
// fails there too. apply refuses such names outright, so no layer in the
// store has one; a container can still make one, and then diff and commit
// say so.
type Tree struct {
	fd   int    // O_PATH of the root directory
	Path string // the root's, for messages
}

// MaxPath is the longest relative path the kernel resolves in one call.
const MaxPath = unix.PathMax - 1

// ErrTooDeep: a path longer than the kernel resolves at once.
var ErrTooDeep = errors.New("path longer than the kernel's limit of 4095 bytes")

// Open opens the root of a tree. The root's own path is berth's (a
// directory of the store, or one the user named), not the tree's.
func Open(root string) (*Tree, error) {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", root, err)
	}
	return &Tree{fd: fd, Path: root}, nil
}

// Close closes the root's fd; twice is fine.
func (t *Tree) Close() {
	if t != nil && t.fd >= 0 {
		unix.Close(t.fd)
		t.fd = -1
	}
}

// Name is rel for a message: "/a/b", shortened when long.
func (t *Tree) Name(rel string) string { return ShortName("/" + rel) }

// HaveOpenat2: openat2 may be missing (ENOSYS before 5.6, or a seccomp
// filter that refuses it). A variable, so that a test can take the
// other road.
var HaveOpenat2 = sync.OnceValue(func() bool {
	fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC})
	if err == nil {
		unix.Close(fd)
	}
	return !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EPERM)
})

// open resolves rel beneath the root without following any symlink and
// opens it with flags (O_NOFOLLOW is added: a symlink as the last name is
// opened as itself when flags has O_PATH, refused otherwise).
func (t *Tree) open(rel string, flags int) (int, error) {
	if len(rel) > MaxPath {
		return -1, ErrTooDeep
	}
	if rel == "" {
		rel = "."
	}
	flags |= unix.O_NOFOLLOW | unix.O_CLOEXEC
	if !HaveOpenat2() {
		return t.openByName(rel, flags)
	}
	how := &unix.OpenHow{Flags: uint64(flags), Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_BENEATH}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(t.fd, rel, how)
		if (errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR)) && i < 100 {
			continue // a rename elsewhere raced the lookup: try again
		}
		return fd, err
	}
}

// openByName is open without openat2: one name at a time, O_NOFOLLOW.
func (t *Tree) openByName(rel string, flags int) (int, error) {
	parts := strings.Split(rel, "/")
	dir := t.fd
	for i, name := range parts[:len(parts)-1] {
		next, err := unix.Openat(dir, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if i > 0 {
			unix.Close(dir)
		}
		if err != nil {
			return -1, err
		}
		dir = next
	}
	fd, err := unix.Openat(dir, parts[len(parts)-1], flags, 0)
	if dir != t.fd {
		unix.Close(dir)
	}
	return fd, err
}

// Handle opens rel itself, a symlink as a symlink.
func (t *Tree) Handle(rel string) (Handle, error) {
	fd, err := t.open(rel, unix.O_PATH)
	if err != nil {
		return Handle{Fd: -1}, t.err("open", rel, err)
	}
	h, err := NewHandle(fd)
	if err != nil {
		return h, fmt.Errorf("%s: %w", t.Name(rel), err)
	}
	return h, nil
}

// Dir opens the directory rel for *at calls. ENOENT is passed on as is.
func (t *Tree) Dir(rel string) (int, error) {
	fd, err := t.open(rel, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return -1, t.err("open directory", rel, err)
	}
	return fd, nil
}

// err words an error of the walk: a symlink where a directory was is
// named as such, and no message carries a path longer than a line.
func (t *Tree) err(op, rel string, err error) error {
	switch {
	case errors.Is(err, ErrTooDeep):
		return fmt.Errorf("%s: %w: refusing", t.Name(rel), ErrTooDeep)
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENOTDIR) && op == "open directory":
		return fmt.Errorf("%s %s: a symlink or not a directory (changed meanwhile?): %w", op, t.Name(rel), err)
	}
	return fmt.Errorf("%s %s: %w", op, t.Name(rel), err)
}

// List reads the directory rel: its names, sorted, each with what lstat
// says of it. A missing directory is empty.
func (t *Tree) List(rel string) ([]Dirent, error) {
	fd, err := t.Dir(rel)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	names, err := fdNames(fd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Name(rel), err)
	}
	out := make([]Dirent, 0, len(names))
	for _, n := range names {
		d := Dirent{Name: n}
		if err := unix.Fstatat(fd, n, &d.Stat, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // removed meanwhile
			}
			return nil, t.err("lstat", path.Join(rel, n), err)
		}
		out = append(out, d)
	}
	return out, nil
}

// A Dirent is one name of a directory and its lstat.
type Dirent struct {
	Name string
	Stat unix.Stat_t
}

func (d Dirent) IsDir() bool { return d.Stat.Mode&unix.S_IFMT == unix.S_IFDIR }

// Lstat describes rel without following it; ok is false when it is
// missing (or a parent is not a directory).
func (t *Tree) Lstat(rel string) (st unix.Stat_t, ok bool, err error) {
	dir, base := path.Split(rel)
	fd, err := t.Dir(strings.TrimSuffix(dir, "/"))
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return st, false, nil
	}
	if err != nil {
		return st, false, err
	}
	defer unix.Close(fd)
	err = unix.Fstatat(fd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return st, false, nil
	}
	if err != nil {
		return st, false, t.err("lstat", rel, err)
	}
	return st, true, nil
}
