package main

// The initramfs is a "newc" cpio archive (the format the kernel unpacks,
// Documentation/driver-api/early-userspace/buffer-format.rst). Writing it
// here, straight from the source files, needs no staging copy on disk and
// no root: every entry gets the owner and mode we say.

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// archive writes a newc cpio stream. Parent directories are emitted before
// their children (the kernel's unpacker does not create them), each once.
type archive struct {
	merged bool // spell /bin /sbin /lib /lib64 under usr/ (see guestPath)
	w      *bufio.Writer
	n      int64 // bytes written: the uncompressed size, for sizing -m
	ino    uint32
	dirs   map[string]bool
	err    error
}

func newArchive(w io.Writer) *archive {
	return &archive{w: bufio.NewWriterSize(w, 1<<20), dirs: map[string]bool{"": true, ".": true, "/": true}}
}

func (a *archive) write(p []byte) {
	if a.err != nil {
		return
	}
	_, a.err = a.w.Write(p)
	a.n += int64(len(p))
}

func (a *archive) pad() {
	if r := a.n % 4; r != 0 {
		a.write(make([]byte, 4-r))
	}
}

// header writes one entry's header and name; the caller writes size bytes of data.
func (a *archive) header(name string, mode, uid, gid uint32, size int64, major, minor uint32) {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	a.ino++
	nlink := 1
	if mode&syscall.S_IFMT == syscall.S_IFDIR {
		nlink = 2
	}
	fields := []uint32{a.ino, mode, uid, gid, uint32(nlink), 0, uint32(size), 0, 0, major, minor, uint32(len(name) + 1), 0}
	var b strings.Builder
	b.WriteString("070701")
	for _, f := range fields {
		fmt.Fprintf(&b, "%08x", f)
	}
	a.write([]byte(b.String()))
	a.write(append([]byte(name), 0))
	a.pad()
}

// mkdirAll emits every missing directory of p (mode 0755, root-owned).
func (a *archive) mkdirAll(p string) {
	p = a.path(p)
	if a.dirs[p] {
		return
	}
	a.mkdirAll(path.Dir(p))
	a.header(p, syscall.S_IFDIR|0o755, 0, 0, 0, 0, 0)
	a.dirs[p] = true
}

// dir emits a directory with the given permission bits.
func (a *archive) dir(p string, perm uint32, uid, gid uint32) {
	p = a.path(p)
	if a.dirs[p] {
		return
	}
	a.mkdirAll(path.Dir(p))
	a.header(p, syscall.S_IFDIR|perm, uid, gid, 0, 0, 0)
	a.dirs[p] = true
}

// bytes emits a regular file with the given content.
func (a *archive) bytes(p string, perm uint32, data []byte) {
	p = a.path(p)
	a.mkdirAll(path.Dir(p))
	a.header(p, syscall.S_IFREG|perm, 0, 0, int64(len(data)), 0, 0)
	a.write(data)
	a.pad()
}

// file emits a regular file copied from src on the host, keeping its permission bits.
func (a *archive) file(p, src string) {
	if a.err != nil {
		return
	}
	fi, err := os.Stat(src)
	if err != nil {
		a.err = err
		return
	}
	a.copyFile(p, src, fi, 0, 0)
}

func (a *archive) copyFile(p, src string, fi fs.FileInfo, uid, gid uint32) {
	p = a.path(p)
	f, err := os.Open(src)
	if err != nil {
		a.err = err
		return
	}
	defer f.Close()
	a.mkdirAll(path.Dir(p))
	a.header(p, syscall.S_IFREG|uint32(fi.Mode().Perm())|modeBits(fi), uid, gid, fi.Size(), 0, 0)
	if a.err != nil {
		return
	}
	n, err := io.Copy(a.w, f)
	a.n += n
	if err == nil && n != fi.Size() {
		err = fmt.Errorf("%s changed size while archiving", src)
	}
	if err != nil {
		a.err = fmt.Errorf("archive %s: %w", src, err)
		return
	}
	a.pad()
}

// modeBits keeps setuid, setgid and sticky bits, which fs.FileMode.Perm drops.
func modeBits(fi fs.FileInfo) uint32 {
	var m uint32
	if fi.Mode()&fs.ModeSetuid != 0 {
		m |= syscall.S_ISUID
	}
	if fi.Mode()&fs.ModeSetgid != 0 {
		m |= syscall.S_ISGID
	}
	if fi.Mode()&fs.ModeSticky != 0 {
		m |= syscall.S_ISVTX
	}
	return m
}

// symlink emits a symbolic link.
func (a *archive) symlink(p, target string) {
	p = a.path(p)
	a.mkdirAll(path.Dir(p))
	a.header(p, syscall.S_IFLNK|0o777, 0, 0, int64(len(target)), 0, 0)
	a.write([]byte(target))
	a.pad()
}

// chardev emits a character device.
func (a *archive) chardev(p string, perm, major, minor uint32) {
	p = a.path(p)
	a.mkdirAll(path.Dir(p))
	a.header(p, syscall.S_IFCHR|perm, 0, 0, 0, major, minor)
}

// tree copies the host directory src to dest, keeping modes, owners and
// symlinks (hard links become separate files). Device nodes are skipped:
// the guest mounts devtmpfs.
func (a *archive) tree(dest, src string) {
	if a.err != nil {
		return
	}
	a.err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := path.Join(dest, filepath.ToSlash(rel))
		fi, err := d.Info()
		if err != nil {
			return err
		}
		var uid, gid uint32
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = st.Uid, st.Gid
		}
		switch {
		case d.IsDir():
			a.dir(to, uint32(fi.Mode().Perm())|modeBits(fi), uid, gid)
		case d.Type()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			a.symlink(to, t)
		case d.Type().IsRegular():
			a.copyFile(to, p, fi, uid, gid)
		}
		return a.err
	})
}

// path cleans p and, on a merged-/usr layout, moves it under usr/.
func (a *archive) path(p string) string {
	return guestPath(path.Clean("/"+p), a.merged)
}

// mergeUsr starts a merged-/usr layout: /bin /sbin /lib /lib64 are links
// into /usr, as on the host, and every later path is spelled through them.
func (a *archive) mergeUsr() {
	a.merged = true
	for _, d := range []string{"bin", "sbin", "lib", "lib64"} {
		a.mkdirAll("usr/" + d)
		a.header(d, syscall.S_IFLNK|0o777, 0, 0, int64(len("usr/"+d)), 0, 0)
		a.write([]byte("usr/" + d))
		a.pad()
		a.dirs[d] = true
	}
}

// close writes the trailer and flushes.
func (a *archive) close() error {
	a.header("TRAILER!!!", 0, 0, 0, 0, 0, 0)
	if a.err != nil {
		return a.err
	}
	return a.w.Flush()
}
