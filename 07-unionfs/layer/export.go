//go:build linux

package layer

import (
	"archive/tar"
	"fmt"
	"io"
	"path"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"berth/07-unionfs/tree"
)

// Export writes the container's root as one tar (docker export): its
// layer over its init layer over the image's, merged in user space as
// overlay would show them (tree.Stack: whiteouts hide, opaque directories
// stop), every file read through a handle, nothing mounted, no symlink
// followed. The same for a running container and a stopped one; what
// is mounted inside a running one (/proc, volumes) is not its root's.
func (s Store) Export(id string, w io.Writer) error {
	r, err := s.Load(id)
	if err != nil {
		return err
	}
	dirs := append([]string{s.diffDir(id)}, s.stack(r)...)
	if r.Driver == DriverCopy {
		dirs = []string{s.diffDir(id)} // the copy is the whole root
	}
	st, err := tree.OpenStack(dirs)
	if err != nil {
		return err
	}
	defer st.Close()
	tw := tar.NewWriter(w)
	if err := exportDir(tw, st.Root()); err != nil {
		return fmt.Errorf("export %s: %w", id, err)
	}
	return tw.Close()
}

func exportDir(tw *tar.Writer, dir tree.StackDir) error {
	ents, err := dir.Entries()
	if err != nil {
		return err
	}
	names := make([]string, 0, len(ents))
	for n := range ents {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		e := ents[n]
		if err := exportEntry(tw, e); err != nil {
			return err
		}
		if e.IsDir() {
			if err := exportDir(tw, dir.Child(n)); err != nil {
				return err
			}
		}
	}
	return nil
}

func exportEntry(tw *tar.Writer, e tree.Entry) error {
	h, err := e.Handle()
	if err != nil {
		return err
	}
	defer h.Close()
	hdr := &tar.Header{
		Name: e.Rel, Mode: int64(h.Stat.Mode & 0o7777), Uid: int(h.Stat.Uid), Gid: int(h.Stat.Gid),
		ModTime: time.Unix(h.Stat.Mtim.Unix()), Format: tar.FormatPAX,
	}
	var body io.Reader
	switch h.Type() {
	case unix.S_IFDIR:
		hdr.Typeflag, hdr.Name = tar.TypeDir, e.Rel+"/"
	case unix.S_IFREG:
		f, err := h.Open()
		if err != nil {
			return fmt.Errorf("%s: %w", e.Rel, err)
		}
		defer f.Close()
		hdr.Typeflag, hdr.Size, body = tar.TypeReg, h.Stat.Size, io.LimitReader(f, h.Stat.Size)
	case unix.S_IFLNK:
		target, err := h.Readlink()
		if err != nil {
			return fmt.Errorf("%s: %w", e.Rel, err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if h.Type() == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(h.Stat.Rdev)), int64(unix.Minor(h.Stat.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil // a socket: nothing a tar can hold
	}
	hdr.Name = path.Clean("/" + hdr.Name)[1:] + map[bool]string{true: "/", false: ""}[hdr.Typeflag == tar.TypeDir]
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if body != nil {
		// The size is the one fstat gave: a file that grows meanwhile is
		// cut, one that shrinks fails the export.
		if n, err := io.Copy(tw, body); err != nil || n != hdr.Size {
			return fmt.Errorf("%s: changed while it was exported (%d of %d bytes): %v", e.Rel, n, hdr.Size, err)
		}
	}
	return nil
}
