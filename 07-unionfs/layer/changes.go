//go:build linux

package layer

import (
	"bytes"
	"errors"
	"os"
	"path"
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

	root   string // the tree it was found in (upper dir, copy), for A and C
	id     fileID // the inode it was when listed: commit archives that one or none
	opaque bool   // a directory that hides everything below it (overlay)
	hidden bool   // D of a lower entry hidden by an opaque parent: the opaque mark covers it
}

func (c Change) String() string { return string(c.Kind) + " " + c.Path }

// rel is the change's path relative to its tree.
func (c Change) rel() string { return c.Path[1:] }

// initPaths are the init layer's files: stage 04 binds the files it
// writes for each run over them, so they are never part of the container's
// changes (Docker leaves them out of diff and commit the same way), not even
// when a container without those mounts wrote them.
var initPaths = map[string]bool{"/etc/hostname": true, "/etc/hosts": true, "/etc/resolv.conf": true}

// overlayChanges reads an overlay upper directory: everything in it is a
// change; whether it is an addition or a modification depends on the
// layers below (lower, top first, init layer included). The upper
// directory is the container's to change while it runs: it is read
// through its tree, like a layer.
func overlayChanges(lower []string, upper string) ([]Change, error) {
	s, err := openStack(lower)
	if err != nil {
		return nil, err
	}
	defer s.close()
	up, err := openTree(upper)
	if err != nil {
		return nil, err
	}
	defer up.close()
	var out []Change
	err = walkUpper(up, "", s.root(), &out)
	return out, err
}

func walkUpper(up *tree, rel string, below stackDir, out *[]Change) error {
	ents, err := up.list(rel)
	if err != nil {
		return err
	}
	lower := map[string]entry{}
	if len(below.layers) > 0 {
		if lower, err = below.entries(); err != nil {
			return err
		}
	}
	for _, d := range ents {
		r := path.Join(rel, d.name)
		p := "/" + r
		if initPaths[p] {
			continue
		}
		le, inLower := lower[d.name]
		if isWhiteout(&d.st) {
			if inLower {
				*out = append(*out, Change{Kind: Deleted, Path: p})
			}
			continue
		}
		kind := Added
		if inLower {
			kind = Changed
		}
		if !d.isDir() {
			*out = append(*out, Change{Kind: kind, Path: p, root: up.path, id: statID(&d.st)})
			continue
		}
		opaque := opaqueAt(up, r)
		*out = append(*out, Change{Kind: kind, Path: p, root: up.path, id: statID(&d.st), opaque: opaque})
		next := stackDir{rel: r}
		if inLower && le.isDir() && !opaque {
			next = below.child(d.name)
		}
		if opaque && inLower && le.isDir() {
			if err := hiddenBelow(up, r, below.child(d.name), out); err != nil {
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
func hiddenBelow(up *tree, rel string, below stackDir, out *[]Change) error {
	ents, err := below.entries()
	if err != nil {
		return err
	}
	for _, name := range sortedKeys(ents) {
		r := path.Join(rel, name)
		if _, ok, err := up.lstat(r); err != nil {
			return err
		} else if ok {
			continue
		}
		*out = append(*out, Change{Kind: Deleted, Path: "/" + r, hidden: true})
	}
	return nil
}

// treeChanges compares a full copy (the copy driver's container tree)
// with the layers it was copied from. A directory with changes below it is
// reported as changed, as overlay's copy-up makes it appear in the upper
// directory, so both drivers give the same list. A copy made without root
// (rootless) gave the container's root what it could not give its owner
// (see copier): that is how it was copied, not a change.
func treeChanges(lower []string, dir string, rootless bool, o owners) ([]Change, error) {
	s, err := openStack(lower)
	if err != nil {
		return nil, err
	}
	defer s.close()
	t, err := openTree(dir)
	if err != nil {
		return nil, err
	}
	defer t.close()
	return treeWalk{t: t, rootless: rootless, owners: o}.walk("", s.root())
}

type treeWalk struct {
	t        *tree
	rootless bool
	owners   owners
	all      bool // keep the init layer's paths too (a whole tree, WriteTree)
}

func (w treeWalk) walk(rel string, below stackDir) ([]Change, error) {
	ents, err := w.t.list(rel)
	if err != nil {
		return nil, err
	}
	lower := map[string]entry{}
	if len(below.layers) > 0 {
		lower, err = below.entries()
		if w.rootless && errors.Is(err, os.ErrPermission) {
			lower, err = map[string]entry{}, nil // copied empty (see copier)
		}
		if err != nil {
			return nil, err
		}
	}
	mine := map[string]dirent{}
	all := map[string]bool{}
	for _, d := range ents {
		mine[d.name] = d
		all[d.name] = true
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
		c := Change{Path: p, root: w.t.path, id: statID(&d.st)}
		if !inLower {
			c.Kind = Added
			out = append(out, c)
			if d.isDir() {
				sub, err := w.walk(r, stackDir{rel: r})
				if err != nil {
					return nil, err
				}
				out = append(out, sub...)
			}
			continue
		}
		c.Kind = Changed
		same, err := w.sameMeta(r, &d.st, le)
		if err != nil {
			return nil, err
		}
		if !d.isDir() {
			if !same {
				out = append(out, c)
			}
			continue
		}
		next := stackDir{rel: r}
		if le.isDir() {
			next = below.child(name)
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
func (w treeWalk) sameMeta(rel string, st *unix.Stat_t, le entry) (bool, error) {
	l := &le.st
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
	mine, err := w.t.handle(rel)
	if err != nil {
		return false, err
	}
	defer mine.close()
	theirs, err := le.handle()
	if err != nil {
		return false, err
	}
	defer theirs.close()
	if mine.typ() != theirs.typ() {
		return false, nil // changed since it was listed
	}
	if mine.isSymlink() {
		a, _ := mine.readlink()
		b, _ := theirs.readlink()
		if a != b {
			return false, nil
		}
	}
	xa, _ := mine.xattrs()
	xb, _ := theirs.xattrs()
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
