//go:build linux

package diff

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"berth/07-unionfs/tree"
)

// WriteTree writes every file under dir as a base layer tarball (as
// docker import makes an image of a root filesystem). It returns the bytes
// of file content written.
func WriteTree(w io.Writer, dir string) (int64, error) {
	t, err := tree.Open(dir)
	if err != nil {
		return 0, err
	}
	defer t.Close()
	changes, err := treeWalk{t: t, all: true}.walk("", tree.StackDir{})
	if err != nil {
		return 0, fmt.Errorf("walk %s: %w", dir, err)
	}
	return WriteLayer(w, changes, Owners{})
}

// WriteLayer writes changes as an OCI layer tarball (image-spec,
// layer.md): added and changed paths as ordinary entries with their
// owners, modes, times, link targets and xattrs; a hardlinked inode once,
// then as links to its first name; a deletion as an empty file .wh.NAME
// beside it; an opaque directory as the directory followed by
// DIR/.wh..wh..opq. Overlay's own format (0/0 devices, trusted.overlay.*
// xattrs) never reaches the tarball: it means nothing to another driver.
// Owners are written as the container saw them (see owners). It returns
// the bytes of file content written.
func WriteLayer(w io.Writer, changes []Change, o Owners) (int64, error) {
	tw := tar.NewWriter(w)
	var total int64
	links := map[[2]uint64]string{}
	trees := map[string]*tree.Tree{}
	defer func() {
		for _, t := range trees {
			t.Close()
		}
	}()
	for _, c := range changes {
		name := strings.TrimPrefix(c.Path, "/")
		if c.Kind == Deleted {
			if c.hidden {
				continue
			}
			wh := path.Join(path.Dir(name), tree.WhiteoutPrefix+path.Base(name))
			if err := writeEmpty(tw, wh); err != nil {
				return total, err
			}
			continue
		}
		t := trees[c.root]
		if t == nil {
			var err error
			if t, err = tree.Open(c.root); err != nil {
				return total, err
			}
			trees[c.root] = t
		}
		n, err := writeEntry(tw, t, c, links, o)
		total += n
		if err != nil {
			return total, err
		}
		if c.opaque {
			if err := writeEmpty(tw, path.Join(name, tree.OpaqueMarker)); err != nil {
				return total, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return total, fmt.Errorf("write tarball: %w", err)
	}
	return total, nil
}

// writeEmpty writes a whiteout marker: an empty regular file.
func writeEmpty(tw *tar.Writer, name string) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o600, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// writeEntry archives one change. The file is opened by the tree, with no
// symlink followed on the way or at the end, and must still be the inode
// that was listed (same device, inode and type): otherwise a running
// container swapped it meanwhile, maybe for a symlink to a host file, and
// the commit is refused rather than guessed. Header, link target, xattrs
// and contents all come from that one fd.
func writeEntry(tw *tar.Writer, t *tree.Tree, c Change, links map[[2]uint64]string, o Owners) (int64, error) {
	name := c.rel()
	h, err := t.Handle(name)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	if !h.Same(c.id) {
		return 0, fmt.Errorf("%s changed while it was being committed: refusing (commit pauses a running container unless --pause=false)", tree.ShortName(c.Path))
	}
	st := &h.Stat
	uid, gid := o.container(st.Uid, st.Gid)
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 07777),
		Uid:     int(uid),
		Gid:     int(gid),
		ModTime: time.Unix(st.Mtim.Unix()),
		// PAX keeps nanosecond times and carries xattrs.
		Format: tar.FormatPAX,
	}
	switch h.Type() {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = st.Size
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		if hdr.Linkname, err = h.Readlink(); err != nil {
			return 0, fmt.Errorf("%s: %w", tree.ShortName(c.Path), err)
		}
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if h.Type() == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor = int64(unix.Major(st.Rdev))
		hdr.Devminor = int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	case unix.S_IFSOCK:
		return 0, nil // a socket is a live object, not content (tar cannot hold it)
	}
	if st.Nlink > 1 && hdr.Typeflag != tar.TypeDir {
		key := [2]uint64{st.Dev, st.Ino}
		if first, ok := links[key]; ok {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
		} else {
			links[key] = name
		}
	}
	xs, err := h.Xattrs()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", tree.ShortName(c.Path), err)
	}
	for k, v := range xs {
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords["SCHILY.xattr."+k] = string(v)
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return 0, fmt.Errorf("write header %s: %w", tree.ShortName(c.Path), err)
	}
	if hdr.Typeflag != tar.TypeReg || hdr.Size == 0 {
		return 0, nil
	}
	f, err := h.Open()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", tree.ShortName(c.Path), err)
	}
	defer f.Close()
	n, err := io.CopyN(tw, f, hdr.Size)
	if errors.Is(err, io.EOF) {
		return n, fmt.Errorf("%s shrank while it was being read: refusing (commit pauses a running container unless --pause=false)", tree.ShortName(c.Path))
	}
	if err != nil {
		return n, fmt.Errorf("archive %s: %w", tree.ShortName(c.Path), err)
	}
	return n, nil
}
