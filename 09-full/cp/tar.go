//go:build linux

package cp

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	"golang.org/x/sys/unix"
)

// CopyOutTar writes src, a path in the container, as a tar stream to w
// (docker cp CONTAINER:SRC -): the entry named as src's last name, and
// what is under it; the same handles as CopyOut.
func (r *Root) CopyOutTar(src string, w io.Writer) error {
	src, as, err := r.source(src)
	if err != nil {
		return err
	}
	dir, name, err := r.parent(src)
	if err != nil {
		return fmt.Errorf("could not find the file %s in container: %w", src, err)
	}
	defer unix.Close(dir)
	tw := tar.NewWriter(w)
	if err := r.tarEntry(tw, dir, name, as); err != nil {
		return err
	}
	return tw.Close()
}

func (r *Root) tarEntry(tw *tar.Writer, dir int, name, rel string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	hdr := &tar.Header{Name: path.Clean(rel), Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()), Format: tar.FormatPAX}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		sub, err := openDir(dir, name)
		if err != nil {
			return err
		}
		defer unix.Close(sub)
		hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		names, err := readNames(sub)
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := r.tarEntry(tw, sub, n, rel+"/"+n); err != nil {
				return err
			}
		}
		return nil
	case unix.S_IFREG:
		fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", rel, err)
		}
		f := os.NewFile(uintptr(fd), name)
		defer f.Close()
		var now unix.Stat_t
		if err := unix.Fstat(fd, &now); err != nil || now.Mode&unix.S_IFMT != unix.S_IFREG {
			return fmt.Errorf("%s changed while it was copied: refused", rel)
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, now.Size
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if n, err := io.Copy(tw, io.LimitReader(f, now.Size)); err != nil || n != now.Size {
			return fmt.Errorf("%s: changed while it was copied (%d of %d bytes): %v", rel, n, now.Size, err)
		}
		return nil
	case unix.S_IFLNK:
		target, err := readlinkat(dir, name)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
		return tw.WriteHeader(hdr)
	}
	r.Warn("skipped %s: not a file, directory or symlink", rel)
	return nil
}
