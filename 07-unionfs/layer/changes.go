//go:build linux

package layer

import (
	"bytes"
	"errors"
	"os"
	"path"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"
)

// Kind is how a path differs from the layers below: docker diff's letters.
type Kind byte

const (
	Added   Kind = 'A'
	Changed Kind = 'C'
	Deleted Kind = 'D'
)

// A Change is one path of the container layer.
type Change struct {
	Kind Kind
	Path string // absolute inside the container: "/etc/passwd"

	src    string // the file to archive, for A and C
	opaque bool   // a directory that hides everything below it (overlay)
	hidden bool   // D of a lower entry hidden by an opaque parent: the opaque mark covers it
}

func (c Change) String() string { return string(c.Kind) + " " + c.Path }

// initPaths are the init layer's files: stage 04 binds the files it
// writes for each run over them, so they are never part of the container's
// changes (Docker leaves them out of diff and commit the same way), not even
// when a container without those mounts wrote them.
var initPaths = map[string]bool{"/etc/hostname": true, "/etc/hosts": true, "/etc/resolv.conf": true}

// overlayChanges reads an overlay upper directory: everything in it is a
// change; whether it is an addition or a modification depends on the
// layers below (lower, top first, init layer included).
func overlayChanges(lower []string, upper string) ([]Change, error) {
	var out []Change
	err := walkUpper(upper, "/", newStack(lower), &out)
	return out, err
}

func walkUpper(dir, rel string, below stackDir, out *[]Change) error {
	names, err := readNames(dir)
	if err != nil {
		return err
	}
	lower := map[string]entry{}
	if len(below) > 0 {
		if lower, err = below.entries(); err != nil {
			return err
		}
	}
	for _, name := range names {
		p := filepath.Join(dir, name)
		r := path.Join(rel, name)
		if initPaths[r] {
			continue
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		le, inLower := lower[name]
		if isWhiteout(&st) {
			if inLower {
				*out = append(*out, Change{Kind: Deleted, Path: r})
			}
			continue
		}
		kind := Added
		if inLower {
			kind = Changed
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			*out = append(*out, Change{Kind: kind, Path: r, src: p})
			continue
		}
		opaque := isOpaque(p)
		*out = append(*out, Change{Kind: kind, Path: r, src: p, opaque: opaque})
		var next stackDir
		if inLower && le.isDir() && !opaque {
			next = below.child(name)
		}
		if opaque && inLower && le.isDir() {
			if err := hiddenBelow(p, r, below.child(name), out); err != nil {
				return err
			}
		}
		if err := walkUpper(p, r, next, out); err != nil {
			return err
		}
	}
	return nil
}

// hiddenBelow lists, as deletions, the lower entries an opaque directory
// hides and the upper does not replace: what the user sees as deleted.
func hiddenBelow(upperDir, rel string, below stackDir, out *[]Change) error {
	ents, err := below.entries()
	if err != nil {
		return err
	}
	for _, name := range sortedKeys(ents) {
		var st unix.Stat_t
		if unix.Lstat(filepath.Join(upperDir, name), &st) == nil {
			continue
		}
		*out = append(*out, Change{Kind: Deleted, Path: path.Join(rel, name), hidden: true})
	}
	return nil
}

// treeChanges compares a full copy (the copy driver's container tree)
// with the layers it was copied from. A directory with changes below it is
// reported as changed, as overlay's copy-up makes it appear in the upper
// directory, so both drivers give the same list. A copy made without root
// (rootless) gave the container's root what it could not give its owner
// (see copier): that is how it was copied, not a change.
func treeChanges(lower []string, tree string, rootless bool, o owners) ([]Change, error) {
	t := treeWalk{rootless: rootless, owners: o}
	return t.walk(tree, "/", newStack(lower))
}

type treeWalk struct {
	rootless bool
	owners   owners
	all      bool // keep the init layer's paths too (a whole tree, WriteTree)
}

func (t treeWalk) walk(dir, rel string, below stackDir) ([]Change, error) {
	names, err := readNames(dir)
	if err != nil {
		return nil, err
	}
	lower := map[string]entry{}
	if len(below) > 0 {
		lower, err = below.entries()
		if t.rootless && errors.Is(err, os.ErrPermission) {
			lower, err = map[string]entry{}, nil // copied empty (see copier)
		}
		if err != nil {
			return nil, err
		}
	}
	all := map[string]bool{}
	for _, n := range names {
		all[n] = true
	}
	for n := range lower {
		all[n] = true
	}
	sorted := make([]string, 0, len(all))
	for n := range all {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)

	var out []Change
	for _, name := range sorted {
		p := filepath.Join(dir, name)
		r := path.Join(rel, name)
		if initPaths[r] && !t.all {
			continue
		}
		le, inLower := lower[name]
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			if inLower {
				out = append(out, Change{Kind: Deleted, Path: r})
			}
			continue
		}
		if !inLower {
			out = append(out, Change{Kind: Added, Path: r, src: p})
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				sub, err := t.walk(p, r, nil)
				if err != nil {
					return nil, err
				}
				out = append(out, sub...)
			}
			continue
		}
		differs := !t.sameMeta(p, &st, le)
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if differs {
				out = append(out, Change{Kind: Changed, Path: r, src: p})
			}
			continue
		}
		var next stackDir
		if le.isDir() {
			next = below.child(name)
		}
		sub, err := t.walk(p, r, next)
		if err != nil {
			return nil, err
		}
		if differs || len(sub) > 0 {
			out = append(out, Change{Kind: Changed, Path: r, src: p})
			out = append(out, sub...)
		}
	}
	return out, nil
}

// sameMeta compares what a tar entry would record: type, mode, owner, and
// for non-directories size, mtime, device number, link target; xattrs.
// (Docker's naive diff driver compares the same; contents are not read.)
func (t treeWalk) sameMeta(p string, st *unix.Stat_t, le entry) bool {
	l := &le.st
	uid, gid := l.Uid, l.Gid
	if t.rootless {
		uid, gid = t.owners.copied(uid, gid)
	}
	if st.Mode != l.Mode || st.Uid != uid || st.Gid != gid {
		return false
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if st.Size != l.Size || st.Mtim != l.Mtim || st.Rdev != l.Rdev {
			return false
		}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		a, _ := readlink(p)
		b, _ := readlink(le.path)
		if a != b {
			return false
		}
	}
	xa, _ := listXattrs(p)
	xb, _ := listXattrs(le.path)
	if len(xa) != len(xb) {
		return false
	}
	for k, v := range xa {
		if w, ok := xb[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

func readlink(p string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlink(p, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
