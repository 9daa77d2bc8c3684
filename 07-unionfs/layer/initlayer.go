//go:build linux

package layer

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"berth/07-unionfs/tree"
)

// The init layer sits between the image's layers and the container's own
// layer (Docker's "<id>-init"). It holds what every container needs whatever
// its image: the mount points /etc/hostname, /etc/hosts and
// /etc/resolv.conf, empty files over which stage 04 binds the files it
// writes in the state directory, and the mount points of the volumes. Being
// a read-only layer of its own, none of it is a change of the container:
// the bind mounts never create a mount point in the container layer, and
// diff and commit never see these paths.

// initFiles are the init layer's files: mount points of stage 04's files.
var initFiles = []string{"hostname", "hosts", "resolv.conf"}

// writeInit fills the init layer dir, on top of the layers below (top
// first). rootless: see copier.
func writeInit(dir string, below []string, volumes []Volume, rootless bool) error {
	s, err := tree.OpenStack(below)
	if err != nil {
		return err
	}
	defer s.Close()
	stack := s.Root()
	cp := newCopier(rootless)
	etc, err := cp.mkdirLike(dir, stack, "/etc")
	if err != nil {
		return err
	}
	for _, name := range initFiles {
		if err := os.WriteFile(filepath.Join(etc, name), nil, 0o644); err != nil {
			return err
		}
	}
	for _, v := range volumes {
		if err := cp.mountpoint(dir, stack, v); err != nil {
			return fmt.Errorf("mount point for volume %s: %w", v.Dest, err)
		}
	}
	return nil
}

// mountpoint makes sure the volume's destination exists in the union: if
// no layer has it, it is created in the init layer. The destination is
// resolved as the container will see it: symlinks in the layers are
// followed, but never out of the root (securejoin over the stack, below).
func (cp *copier) mountpoint(dir string, stack tree.StackDir, v Volume) error {
	resolved, err := securejoin.SecureJoinVFS("/", v.Dest, stackVFS{stack})
	if err != nil {
		return err
	}
	if e, ok, err := stack.Lookup(resolved); err != nil {
		return err
	} else if ok && e.IsDir() != v.isFile() {
		return nil // the image has it, of the right kind
	}
	parent, err := cp.mkdirLike(dir, stack, filepath.Dir(resolved))
	if err != nil {
		return err
	}
	p := filepath.Join(parent, filepath.Base(resolved))
	if v.isFile() {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		return f.Close()
	}
	return os.MkdirAll(p, 0o755)
}

// mkdirLike creates rel (resolved, inside the init layer dir) and its
// parents, giving each the owner, mode and times the same directory has in
// the layers below: an init-layer directory shadows the lower one's
// metadata, and /tmp must stay 1777.
func (cp *copier) mkdirLike(dir string, stack tree.StackDir, rel string) (string, error) {
	cur := dir
	sub := "/"
	for _, name := range tree.SplitPath(rel) {
		cur = filepath.Join(cur, name)
		sub = filepath.Join(sub, name)
		if _, err := os.Lstat(cur); err == nil {
			continue
		}
		if err := os.Mkdir(cur, 0o755); err != nil {
			return "", err
		}
		if e, ok, err := stack.Lookup(sub); err != nil {
			return "", err
		} else if ok && e.IsDir() {
			if err := cp.copyMetaTo(e, cur); err != nil {
				return "", err
			}
		}
	}
	return cur, nil
}

// copyMetaTo gives p, a directory of the init layer just made, the
// metadata of e.
func (cp *copier) copyMetaTo(e tree.Entry, p string) error {
	src, err := e.Handle()
	if err != nil {
		return err
	}
	defer src.Close()
	fd, err := unix.Open(p, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: p, Err: err}
	}
	dst, err := tree.NewHandle(fd)
	if err != nil {
		return err
	}
	defer dst.Close()
	return cp.setMeta(src, dst)
}

// stackVFS lets securejoin resolve a path through the union of layers as
// the container will see it.
type stackVFS struct{ stack tree.StackDir }

func (v stackVFS) Lstat(name string) (os.FileInfo, error) {
	e, ok, err := v.stack.Lookup(name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: unix.ENOENT}
	}
	return statInfo{name: path.Base(name), st: e.Stat}, nil
}

func (v stackVFS) Readlink(name string) (string, error) {
	e, ok, err := v.stack.Lookup(name)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: unix.ENOENT}
	}
	h, err := e.Handle()
	if err != nil {
		return "", err
	}
	defer h.Close()
	return h.Readlink()
}

// statInfo is an os.FileInfo made from an lstat.
type statInfo struct {
	name string
	st   unix.Stat_t
}

func (i statInfo) Name() string       { return i.name }
func (i statInfo) Size() int64        { return i.st.Size }
func (i statInfo) ModTime() time.Time { return time.Unix(i.st.Mtim.Unix()) }
func (i statInfo) IsDir() bool        { return i.st.Mode&unix.S_IFMT == unix.S_IFDIR }
func (i statInfo) Sys() any           { return &i.st }
func (i statInfo) Mode() fs.FileMode {
	m := fs.FileMode(i.st.Mode & 0o777)
	switch i.st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		m |= fs.ModeDevice
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	}
	if i.st.Mode&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if i.st.Mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if i.st.Mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}
