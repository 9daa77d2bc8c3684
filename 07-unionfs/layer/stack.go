//go:build linux

package layer

import (
	"errors"
	"os"
	"path"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"
)

// A layer directory is stored in overlay's own format: a deleted name is a
// character device 0/0 (a whiteout), and a directory whose lower contents
// are hidden carries the xattr trusted.overlay.opaque=y (user.overlay.opaque
// when the mount uses userxattr). The kernel reads this format when it
// mounts; this file reads it in user space, for the copy driver and for
// deciding whether a change in the container layer is an addition or a
// modification. Every layer is read through its tree (tree.go): no symlink
// in a layer is ever followed, at any depth.

// Opaque xattr names: trusted.* for a mount made by real root, user.* for a
// mount in a user namespace with the userxattr option.
const (
	xattrOpaqueTrusted = "trusted.overlay.opaque"
	xattrOpaqueUser    = "user.overlay.opaque"
)

// isWhiteout: overlay's whiteout is a character device with number 0/0.
func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// A stack is the read-only layers of a union, top first, each open.
type stack struct{ layers []*tree }

func openStack(dirs []string) (*stack, error) {
	s := &stack{}
	for _, d := range dirs {
		t, err := openTree(d)
		if err != nil {
			s.close()
			return nil, err
		}
		s.layers = append(s.layers, t)
	}
	return s, nil
}

func (s *stack) close() {
	for _, t := range s.layers {
		t.close()
	}
}

// root is the union's root directory: every layer down to the first
// whose root is opaque contributes to it (and to every directory below).
func (s *stack) root() stackDir {
	for i, t := range s.layers {
		if opaqueAt(t, "") {
			return stackDir{layers: s.layers[:i+1]}
		}
	}
	return stackDir{layers: s.layers}
}

// A stackDir is one directory as the union sees it: the same relative
// directory in every layer that contributes to it, top layer first. A layer
// stops contributing below a layer where the directory is opaque, or where
// the name is a whiteout or not a directory.
type stackDir struct {
	rel    string // "" for the root
	layers []*tree
}

// entry is one name in a merged directory: where it comes from.
type entry struct {
	name string
	t    *tree  // the layer that provides it
	rel  string // its path in that layer
	st   unix.Stat_t
}

func (e entry) isDir() bool { return e.st.Mode&unix.S_IFMT == unix.S_IFDIR }

// handle opens the entry itself, in its layer.
func (e entry) handle() (handle, error) { return e.t.handle(e.rel) }

// opaque reports whether directory rel of a tree hides the layers below.
func opaqueAt(t *tree, rel string) bool {
	h, err := t.handle(rel)
	if err != nil {
		return false
	}
	defer h.close()
	return h.isDir() && h.opaque()
}

// entries lists the merged directory: for each name the topmost layer
// that has it, with whiteouts removed.
func (s stackDir) entries() (map[string]entry, error) {
	out := map[string]entry{}
	hidden := map[string]bool{} // names whited out by a layer above
	for _, t := range s.layers {
		ents, err := t.list(s.rel)
		if err != nil {
			return nil, err
		}
		for _, d := range ents {
			if _, ok := out[d.name]; ok || hidden[d.name] {
				continue
			}
			if isWhiteout(&d.st) {
				hidden[d.name] = true
				continue
			}
			out[d.name] = entry{name: d.name, t: t, rel: path.Join(s.rel, d.name), st: d.st}
		}
		if opaqueAt(t, s.rel) {
			break
		}
	}
	return out, nil
}

// child is the stackDir of sub-directory name, given that the topmost
// entry for name is a directory.
func (s stackDir) child(name string) stackDir {
	out := stackDir{rel: path.Join(s.rel, name)}
	for _, t := range s.layers {
		st, ok, err := t.lstat(out.rel)
		if err != nil || !ok {
			continue
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			break // a file or a whiteout hides everything below
		}
		out.layers = append(out.layers, t)
		if opaqueAt(t, out.rel) {
			break
		}
	}
	return out
}

// lookup finds a relative path in the stack; ok is false when no layer
// provides it (absent, or whited out).
func (s stackDir) lookup(rel string) (entry, bool, error) {
	dir := s
	parts := splitPath(rel)
	for i, name := range parts {
		ents, err := dir.entries()
		if err != nil {
			return entry{}, false, err
		}
		e, ok := ents[name]
		if !ok {
			return entry{}, false, nil
		}
		if i == len(parts)-1 {
			return e, true, nil
		}
		if !e.isDir() {
			return entry{}, false, nil
		}
		dir = dir.child(name)
	}
	return entry{}, false, nil
}

// readNames lists a directory of berth's own (not a layer's), sorted; a
// missing directory is empty.
func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, &os.PathError{Op: "readdir", Path: dir, Err: err}
	}
	sort.Strings(names)
	return names, nil
}

func sortedKeys(m map[string]entry) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// splitPath splits a clean relative path into its names.
func splitPath(rel string) []string {
	rel = filepath.Clean("/" + rel)[1:]
	if rel == "" {
		return nil
	}
	var parts []string
	for rel != "" {
		i := 0
		for i < len(rel) && rel[i] != '/' {
			i++
		}
		parts = append(parts, rel[:i])
		if i == len(rel) {
			break
		}
		rel = rel[i+1:]
	}
	return parts
}
