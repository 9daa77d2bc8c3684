//go:build linux

package build

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"berth/07-unionfs/tree"
	"berth/07-unionfs/untar"
	"berth/08-image/image"
	"berth/08-image/store"
)

// COPY and ADD never write into an image: they build a new layer from the
// copied files alone. The files are staged in a temporary tree whose paths
// mirror where they land in the image (the destination resolved through
// the image's own symlinks, inside its root), and that tree becomes the
// layer (Store.PutTree), as a RUN's container layer does. Sources are read
// through a tree (build_fs.go): the build context, minus .dockerignore, or
// an earlier stage's image for COPY --from. A source path with ".." that
// leaves the context is refused; symlinks are followed only inside the
// source's root, as docker does (a link to /etc/passwd names the
// context's etc/passwd), and a symlink inside a copied directory is copied
// as the link itself.

// stager fills the temporary tree of one COPY or ADD layer.
type stager struct {
	root     string     // the tree: its paths are the image's
	work     string     // scratch beside it (ADD's extractions)
	image    image.View // the image below: parents keep its metadata
	uid, gid int        // owner of what is copied; -1: the archive's (ADD)
	rootless bool
	budget   *store.Budget // ADD's archives: what the image's files may still add
	h        hash.Hash
	times    []pendingTime
}

type pendingTime struct {
	path  string
	mtime unix.Timespec
}

func newStager(work string, below image.View, maxImage int64) (*stager, error) {
	s := &stager{root: filepath.Join(work, "tree"), work: work, image: below, h: sha256.New(), rootless: os.Geteuid() != 0,
		budget: &store.Budget{Max: maxImage, Used: below.Files}}
	return s, os.Mkdir(s.root, 0o755)
}

// digest is the content digest of what was staged (paths, modes, owners,
// link targets and file contents; not times): COPY's cache key.
func (s *stager) digest() string { return hex.EncodeToString(s.h.Sum(nil)) }

// mkdirAll makes rel (clean, absolute) and its parents in the stage. A
// directory the image has keeps the image's mode, owner and time: the
// layer carries it only because something below it changed.
func (s *stager) mkdirAll(rel string) (string, error) {
	cur := "/"
	for _, name := range tree.SplitPath(rel) {
		cur = path.Join(cur, name)
		p, err := securejoin.SecureJoin(s.root, cur)
		if err != nil {
			return "", err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err == nil {
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				return "", fmt.Errorf("%s is not a directory", cur)
			}
			continue
		}
		mode, uid, gid := uint32(0o755), 0, 0
		var mtime unix.Timespec
		if ist, _, ok, err := s.image.Stat(cur); err != nil {
			return "", err
		} else if ok && ist.Mode&unix.S_IFMT == unix.S_IFDIR {
			mode, uid, gid, mtime = ist.Mode&0o7777, int(ist.Uid), int(ist.Gid), ist.Mtim
		} else if err := unix.ClockGettime(unix.CLOCK_REALTIME, &mtime); err != nil {
			return "", err
		}
		if err := s.mkdir(p, mode, uid, gid, mtime); err != nil {
			return "", err
		}
	}
	return securejoin.SecureJoin(s.root, rel)
}

func (s *stager) mkdir(p string, mode uint32, uid, gid int, mtime unix.Timespec) error {
	if err := os.Mkdir(p, 0o700); err != nil {
		return err
	}
	if err := s.owner(p, uid, gid); err != nil {
		return err
	}
	if err := unix.Chmod(p, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", p, err)
	}
	s.times = append(s.times, pendingTime{p, mtime})
	return nil
}

func (s *stager) owner(p string, uid, gid int) error {
	if err := unix.Lchown(p, uid, gid); err != nil && !(s.rootless && errors.Is(err, unix.EPERM)) {
		return fmt.Errorf("chown %s: %w", p, err)
	}
	return nil
}

// target makes rel's parent in the stage and clears rel for a new entry
// (a directory already there stays, when a directory comes).
func (s *stager) target(rel string, dir bool) (string, error) {
	parent, err := s.mkdirAll(path.Dir(rel))
	if err != nil {
		return "", err
	}
	p := filepath.Join(parent, path.Base(rel))
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err == nil && !(dir && st.Mode&unix.S_IFMT == unix.S_IFDIR) {
		if err := os.RemoveAll(p); err != nil {
			return "", err
		}
	}
	return p, nil
}

// copyTree copies srcRel of the source to dstRel in the stage: a file, a
// symlink as the link itself, a directory with everything in it (what
// .dockerignore excludes left out, see copyChildren). srcRel itself was
// named by COPY and checked by copySource.sources.
func (s *stager) copyTree(src copySource, srcRel, dstRel string) error {
	return s.copyEntry(src, srcRel, dstRel, false, func() error { return nil })
}

// copyEntry copies one entry. ready makes the directories above it that
// wait for their first entry (lazy ones, below); lazy makes this entry, a
// directory, such a one: an excluded directory that an exception
// (!pattern) reaches into appears only if something in it is copied.
func (s *stager) copyEntry(src copySource, srcRel, dstRel string, lazy bool, ready func() error) error {
	st, real, ok, err := src.view.Stat(srcRel)
	if err != nil || !ok {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		made := false
		mk := func() error {
			if made {
				return nil
			}
			if err := ready(); err != nil {
				return err
			}
			made = true
			return s.copyDir(st, dstRel)
		}
		if !lazy {
			if err := mk(); err != nil {
				return err
			}
		}
		return s.copyChildren(src, srcRel, dstRel, mk)
	}
	if err := ready(); err != nil {
		return err
	}
	p, err := s.target(dstRel, false)
	if err != nil {
		return err
	}
	uid, gid := s.uid, s.gid
	fmt.Fprintf(s.h, "%s %o %d:%d\n", dstRel, st.Mode, uid, gid)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if err := s.copyFile(real, p, st.Mode&0o7777); err != nil {
			return err
		}
		return setTimes(p, st.Mtim)
	case unix.S_IFLNK:
		target, err := os.Readlink(real)
		if err != nil {
			return err
		}
		fmt.Fprintf(s.h, "-> %s\n", target)
		if err := os.Symlink(target, p); err != nil {
			return err
		}
	case unix.S_IFIFO:
		if err := unix.Mkfifo(p, st.Mode&0o7777); err != nil {
			return fmt.Errorf("mkfifo %s: %w", p, err)
		}
	default:
		return nil // devices and sockets are not copied from a context
	}
	if err := s.owner(p, uid, gid); err != nil {
		return err
	}
	return setTimes(p, st.Mtim)
}

// copyDir makes the directory dstRel with the mode and time of the
// source's (st), owned by the copy's owner.
func (s *stager) copyDir(st *unix.Stat_t, dstRel string) error {
	p, err := s.target(dstRel, true)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.h, "%s %o %d:%d\n", dstRel, st.Mode, s.uid, s.gid)
	if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if err := s.owner(p, s.uid, s.gid); err != nil {
		return err
	}
	if err := unix.Chmod(p, st.Mode&0o7777); err != nil {
		return err
	}
	s.times = append(s.times, pendingTime{p, st.Mtim})
	return nil
}

// copyChildren copies what the directory srcRel holds into dstRel, minus
// what .dockerignore excludes, tested on every entry. An excluded
// directory is entered only if the .dockerignore has exceptions (one may
// bring back something below it), and made only when something is. ready
// makes dstRel (and what waits above it) before the first entry.
func (s *stager) copyChildren(src copySource, srcRel, dstRel string, ready func() error) error {
	names, err := src.view.ReadDir(srcRel)
	if err != nil {
		return err
	}
	for _, n := range names {
		child, dst := path.Join(srcRel, n), path.Join(dstRel, n)
		ex, err := src.excluded(child)
		if err != nil {
			return err
		}
		if ex && !src.mayReenter(child) {
			continue
		}
		if err := s.copyEntry(src, child, dst, ex, ready); err != nil {
			return err
		}
	}
	return nil
}

// copyFile copies a regular file's content, hashing it. The source is
// opened with O_NOFOLLOW: a file swapped for a symlink meanwhile is refused.
func (s *stager) copyFile(from, to string, mode uint32) error {
	in, err := os.OpenFile(from, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	fh := sha256.New()
	_, err = io.Copy(io.MultiWriter(out, fh), in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copy %s: %w", from, err)
	}
	fmt.Fprintf(s.h, "%x\n", fh.Sum(nil))
	// The mode after the owner: chown clears setuid and setgid bits.
	if err := s.owner(to, s.uid, s.gid); err != nil {
		return err
	}
	return unix.Chmod(to, mode)
}

func setTimes(p string, mtime unix.Timespec) error {
	ts := []unix.Timespec{mtime, mtime}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times of %s: %w", p, err)
	}
	return nil
}

// finish sets the directories' times, now that nothing more goes in them.
func (s *stager) finish() error {
	for i := len(s.times) - 1; i >= 0; i-- {
		if err := setTimes(s.times[i].path, s.times[i].mtime); err != nil {
			return err
		}
	}
	return nil
}

// isArchive: ADD unpacks a local tar (plain, gzip or zstd) instead of copying it.
func isArchive(p string) bool {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	r, _, err := untar.Decompress(f)
	if err != nil {
		return false
	}
	defer r.Close()
	_, err = tar.NewReader(r).Next()
	return err == nil
}

// extract unpacks an archive of the source into dstRel, with stage 07's
// safe extraction (no entry may leave the directory it is unpacked in),
// then moves what it made into the stage.
func (s *stager) extract(real, dstRel string, n int) error {
	dst, err := s.mkdirAll(dstRel)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(real, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fh := sha256.New()
	r, _, err := untar.Decompress(io.TeeReader(f, fh))
	if err != nil {
		return err
	}
	defer r.Close()
	tmp := filepath.Join(s.work, "extract-"+strconv.Itoa(n))
	devices := untar.DevicesCreate
	if s.rootless {
		devices = untar.DevicesSkip
	}
	// An archive ADD unpacks is bounded as a layer is (bound.go), by what
	// the image's layers, and the archives this step unpacked before it,
	// left of --max-image-size: CheckedTar counts, Apply's per-layer bound
	// is a second wall (0, all used, would mean its default).
	checked := store.NewCheckedTar(r, s.budget)
	if _, err := untar.Apply(checked, tmp, untar.Options{Devices: devices, Rootless: s.rootless, MaxBytes: max(s.budget.Left(), 1)}); err != nil {
		if checked.Err != nil {
			err = checked.Err
		}
		return fmt.Errorf("unpack %s: %w", filepath.Base(real), err)
	}
	// The rest of the tar (its gzip trailer and checksum), then of the
	// file: the whole archive goes into the digest.
	if _, err := io.Copy(io.Discard, checked); err != nil {
		return fmt.Errorf("unpack %s: %w", filepath.Base(real), err)
	}
	if _, err := io.Copy(io.Discard, f); err != nil {
		return err
	}
	fmt.Fprintf(s.h, "archive %x into %s\n", fh.Sum(nil), dstRel)
	if s.uid >= 0 {
		err := filepath.WalkDir(tmp, func(p string, _ os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return s.owner(p, s.uid, s.gid)
		})
		if err != nil {
			return err
		}
	}
	return mergeInto(tmp, dst)
}

// mergeInto moves the entries of from into the directory to, merging
// directories, replacing anything else.
func mergeInto(from, to string) error {
	names, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range names {
		src, dst := filepath.Join(from, e.Name()), filepath.Join(to, e.Name())
		var st unix.Stat_t
		if unix.Lstat(dst, &st) == nil {
			if e.IsDir() && st.Mode&unix.S_IFMT == unix.S_IFDIR {
				if err := mergeInto(src, dst); err != nil {
					return err
				}
				continue
			}
			if err := os.RemoveAll(dst); err != nil {
				return err
			}
		}
		if err := os.Rename(src, dst); err != nil {
			return err
		}
	}
	return nil
}

// chownIDs reads COPY --chown=USER[:GROUP]: names are looked up in the
// image's /etc/passwd and /etc/group (users.go); a user alone also names
// the group of the same number, as docker does.
func chownIDs(spec string, below image.View) (int, int, error) {
	name, group, hasGroup := strings.Cut(spec, ":")
	if name == "" || hasGroup && group == "" {
		return 0, 0, fmt.Errorf("--chown: empty user or group")
	}
	uid, err := image.LookupUserID(name, below)
	if err != nil {
		return 0, 0, err
	}
	gid := uid
	if hasGroup {
		if gid, err = image.LookupGroupID(group, below); err != nil {
			return 0, 0, err
		}
	}
	return uid, gid, nil
}
