//go:build linux

// Package diff finds what a container changed in its layer, as docker diff
// lists it (A, C, D), and writes those changes as an OCI layer tarball, as
// docker commit does: from an overlay upper directory (Overlay), or by
// comparing the copy driver's copy with its layers (Copy). Everything is
// read through stage 07's trees, since a running container may swap any
// name for a symlink meanwhile. Chapter: docs/07-unionfs.md, "diff,
// commit, apply".
package diff

import (
	"bytes"
	"errors"
	"os"
	"path"
	"sort"

	"golang.org/x/sys/unix"

	"berth/07-unionfs/tree"
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

	root   string      // the tree it was found in (upper dir, copy), for A and C
	id     tree.FileID // the inode it was when listed: commit archives that one or none
	opaque bool        // a directory that hides everything below it (overlay)
	hidden bool        // D of a lower entry hidden by an opaque parent: the opaque mark covers it
}

func (c Change) String() string { return string(c.Kind) + " " + c.Path }

// rel is the change's path relative to its tree.
func (c Change) rel() string { return c.Path[1:] }

// initPaths are the init layer's files: stage 04 binds the files it
// writes for each run over them, so they are never part of the container's
// changes (Docker leaves them out of diff and commit the same way), not even
// when a container without those mounts wrote them.
var initPaths = map[string]bool{"/etc/hostname": true, "/etc/hosts": true, "/etc/resolv.conf": true}

// Overlay reads an overlay upper directory: everything in it is a
// change; whether it is an addition or a modification depends on the
// layers below (lower, top first, init layer included). The upper
// directory is the container's to change while it runs: it is read
// through its tree, like a layer.
func Overlay(lower []string, upper string) ([]Change, error) {
	s, err := tree.OpenStack(lower)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	up, err := tree.Open(upper)
	if err != nil {
		return nil, err
	}
	defer up.Close()
	var out []Change
	err = walkUpper(up, "", s.Root(), &out)
	return out, err
}

func walkUpper(up *tree.Tree, rel string, below tree.StackDir, out *[]Change) error {
	ents, err := up.List(rel)
	if err != nil {
		return err
	}
	lower := map[string]tree.Entry{}
	if len(below.Layers) > 0 {
		if lower, err = below.Entries(); err != nil {
			return err
		}
	}
	for _, d := range ents {
		r := path.Join(rel, d.Name)
		p := "/" + r
		if initPaths[p] {
			continue
		}
		le, inLower := lower[d.Name]
		if tree.IsWhiteout(&d.Stat) {
			if inLower {
				*out = append(*out, Change{Kind: Deleted, Path: p})
			}
			continue
		}
		kind := Added
		if inLower {
			kind = Changed
		}
		if !d.IsDir() {
			*out = append(*out, Change{Kind: kind, Path: p, root: up.Path, id: tree.StatID(&d.Stat)})
			continue
		}
		opaque := tree.OpaqueAt(up, r)
		*out = append(*out, Change{Kind: kind, Path: p, root: up.Path, id: tree.StatID(&d.Stat), opaque: opaque})
		next := tree.StackDir{Rel: r}
		if inLower && le.IsDir() && !opaque {
			next = below.Child(d.Name)
		}
		if opaque && inLower && le.IsDir() {
			if err := hiddenBelow(up, r, below.Child(d.Name), out); err != nil {
				return err
			}
		}
		if err := walkUpper(up, r, next, out); err != nil {
			return err
		}
	}
	return nil
}

// hiddenBelow lists, as deletions, the lower entries an opaque directory
// hides and the upper does not replace: what the user sees as deleted.
func hiddenBelow(up *tree.Tree, rel string, below tree.StackDir, out *[]Change) error {
	ents, err := below.Entries()
	if err != nil {
		return err
	}
	for _, name := range tree.SortedKeys(ents) {
		r := path.Join(rel, name)
		if _, ok, err := up.Lstat(r); err != nil {
			return err
		} else if ok {
			continue
		}
		*out = append(*out, Change{Kind: Deleted, Path: "/" + r, hidden: true})
	}
	return nil
}

// Copy compares a full copy (the copy driver's container tree)
// with the layers it was copied from. A directory with changes below it is
// reported as changed, as overlay's copy-up makes it appear in the upper
// directory, so both drivers give the same list. A copy made without root
// (rootless) gave the container's root what it could not give its owner
// (see stage 07's copier, layer/copy.go): that is how it was copied, not a change.
func Copy(lower []string, dir string, rootless bool, o Owners) ([]Change, error) {
	s, err := tree.OpenStack(lower)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	t, err := tree.Open(dir)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	return treeWalk{t: t, rootless: rootless, owners: o}.walk("", s.Root())
}

type treeWalk struct {
	t        *tree.Tree
	rootless bool
	owners   Owners
	all      bool // keep the init layer's paths too (a whole tree, WriteTree)
}

func (w treeWalk) walk(rel string, below tree.StackDir) ([]Change, error) {
	ents, err := w.t.List(rel)
	if err != nil {
		return nil, err
	}
	lower := map[string]tree.Entry{}
	if len(below.Layers) > 0 {
		lower, err = below.Entries()
		if w.rootless && errors.Is(err, os.ErrPermission) {
			lower, err = map[string]tree.Entry{}, nil // copied empty (see stage 07's copier, layer/copy.go)
		}
		if err != nil {
			return nil, err
		}
	}
	mine := map[string]tree.Dirent{}
	all := map[string]bool{}
	for _, d := range ents {
		mine[d.Name] = d
		all[d.Name] = true
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
		r := path.Join(rel, name)
		p := "/" + r
		if initPaths[p] && !w.all {
			continue
		}
		le, inLower := lower[name]
		d, inTree := mine[name]
		if !inTree {
			if inLower {
				out = append(out, Change{Kind: Deleted, Path: p})
			}
			continue
		}
		c := Change{Path: p, root: w.t.Path, id: tree.StatID(&d.Stat)}
		if !inLower {
			c.Kind = Added
			out = append(out, c)
			if d.IsDir() {
				sub, err := w.walk(r, tree.StackDir{Rel: r})
				if err != nil {
					return nil, err
				}
				out = append(out, sub...)
			}
			continue
		}
		c.Kind = Changed
		same, err := w.sameMeta(r, &d.Stat, le)
		if err != nil {
			return nil, err
		}
		if !d.IsDir() {
			if !same {
				out = append(out, c)
			}
			continue
		}
		next := tree.StackDir{Rel: r}
		if le.IsDir() {
			next = below.Child(name)
		}
		sub, err := w.walk(r, next)
		if err != nil {
			return nil, err
		}
		if !same || len(sub) > 0 {
			out = append(out, c)
			out = append(out, sub...)
		}
	}
	return out, nil
}

// sameMeta compares what a tar entry would record: type, mode, owner, and
// for non-directories size, mtime, device number, link target; xattrs.
// (Docker's naive diff driver compares the same; contents are not read.)
func (w treeWalk) sameMeta(rel string, st *unix.Stat_t, le tree.Entry) (bool, error) {
	l := &le.Stat
	uid, gid := l.Uid, l.Gid
	if w.rootless {
		uid, gid = w.owners.copied(uid, gid)
	}
	if st.Mode != l.Mode || st.Uid != uid || st.Gid != gid {
		return false, nil
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if st.Size != l.Size || st.Mtim != l.Mtim || st.Rdev != l.Rdev {
			return false, nil
		}
	}
	mine, err := w.t.Handle(rel)
	if err != nil {
		return false, err
	}
	defer mine.Close()
	theirs, err := le.Handle()
	if err != nil {
		return false, err
	}
	defer theirs.Close()
	if mine.Type() != theirs.Type() {
		return false, nil // changed since it was listed
	}
	if mine.IsSymlink() {
		a, _ := mine.Readlink()
		b, _ := theirs.Readlink()
		if a != b {
			return false, nil
		}
	}
	xa, _ := mine.Xattrs()
	xb, _ := theirs.Xattrs()
	if len(xa) != len(xb) {
		return false, nil
	}
	for k, v := range xa {
		if w, ok := xb[k]; !ok || !bytes.Equal(v, w) {
			return false, nil
		}
	}
	return true, nil
}
