//go:build linux

package tree

import (
	"errors"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

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
	XattrOpaqueTrusted = "trusted.overlay.opaque"
	XattrOpaqueUser    = "user.overlay.opaque"
)

// IsWhiteout: overlay's whiteout is a character device with number 0/0.
func IsWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// IsOverlayXattr: overlay keeps its bookkeeping (opaque, redirect,
// origin, metacopy) in trusted.overlay.* or, with userxattr, user.overlay.*.
func IsOverlayXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.")
}

// An OCI layer tarball says the same as overlay's whiteouts and opaque
// marks with names: .wh.NAME deletes NAME of the layers below,
// DIR/.wh..wh..opq makes DIR opaque, and other .wh..wh.* names are aufs'
// bookkeeping (image-spec, layer.md).
const (
	WhiteoutPrefix = ".wh."
	WhiteoutMeta   = ".wh..wh."
	OpaqueMarker   = ".wh..wh..opq"
)

// A Stack is the read-only layers of a union, top first, each open.
type Stack struct{ Layers []*Tree }

// OpenStack opens the layer directories dirs, top first.
func OpenStack(dirs []string) (*Stack, error) {
	s := &Stack{}
	for _, d := range dirs {
		t, err := Open(d)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.Layers = append(s.Layers, t)
	}
	return s, nil
}

// Close closes every layer.
func (s *Stack) Close() {
	for _, t := range s.Layers {
		t.Close()
	}
}

// Root is the union's root directory: every layer down to the first
// whose root is opaque contributes to it (and to every directory below).
func (s *Stack) Root() StackDir {
	for i, t := range s.Layers {
		if OpaqueAt(t, "") {
			return StackDir{Layers: s.Layers[:i+1]}
		}
	}
	return StackDir{Layers: s.Layers}
}

// A StackDir is one directory as the union sees it: the same relative
// directory in every layer that contributes to it, top layer first. A layer
// stops contributing below a layer where the directory is opaque, or where
// the name is a whiteout or not a directory.
type StackDir struct {
	Rel    string // "" for the root
	Layers []*Tree
}

// Entry is one name in a merged directory: where it comes from.
type Entry struct {
	Name string
	Tree *Tree  // the layer that provides it
	Rel  string // its path in that layer
	Stat unix.Stat_t
}

func (e Entry) IsDir() bool { return e.Stat.Mode&unix.S_IFMT == unix.S_IFDIR }

// Handle opens the entry itself, in its layer.
func (e Entry) Handle() (Handle, error) { return e.Tree.Handle(e.Rel) }

// OpaqueAt reports whether directory rel of a tree hides the layers below.
func OpaqueAt(t *Tree, rel string) bool {
	h, err := t.Handle(rel)
	if err != nil {
		return false
	}
	defer h.Close()
	return h.IsDir() && h.Opaque()
}

// Entries lists the merged directory: for each name the topmost layer
// that has it, with whiteouts removed.
func (s StackDir) Entries() (map[string]Entry, error) {
	out := map[string]Entry{}
	hidden := map[string]bool{} // names whited out by a layer above
	for _, t := range s.Layers {
		ents, err := t.List(s.Rel)
		if err != nil {
			return nil, err
		}
		for _, d := range ents {
			if _, ok := out[d.Name]; ok || hidden[d.Name] {
				continue
			}
			if IsWhiteout(&d.Stat) {
				hidden[d.Name] = true
				continue
			}
			out[d.Name] = Entry{Name: d.Name, Tree: t, Rel: path.Join(s.Rel, d.Name), Stat: d.Stat}
		}
		if OpaqueAt(t, s.Rel) {
			break
		}
	}
	return out, nil
}

// Child is the StackDir of sub-directory name, given that the topmost
// entry for name is a directory.
func (s StackDir) Child(name string) StackDir {
	out := StackDir{Rel: path.Join(s.Rel, name)}
	for _, t := range s.Layers {
		st, ok, err := t.Lstat(out.Rel)
		if err != nil || !ok {
			continue
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			break // a file or a whiteout hides everything below
		}
		out.Layers = append(out.Layers, t)
		if OpaqueAt(t, out.Rel) {
			break
		}
	}
	return out
}

// Lookup finds a relative path in the stack; ok is false when no layer
// provides it (absent, or whited out).
func (s StackDir) Lookup(rel string) (Entry, bool, error) {
	dir := s
	parts := SplitPath(rel)
	for i, name := range parts {
		ents, err := dir.Entries()
		if err != nil {
			return Entry{}, false, err
		}
		e, ok := ents[name]
		if !ok {
			return Entry{}, false, nil
		}
		if i == len(parts)-1 {
			return e, true, nil
		}
		if !e.IsDir() {
			return Entry{}, false, nil
		}
		dir = dir.Child(name)
	}
	return Entry{}, false, nil
}

// ReadNames lists a directory of berth's own (not a layer's), sorted; a
// missing directory is empty.
func ReadNames(dir string) ([]string, error) {
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

// SortedKeys are the names of a merged directory, sorted.
func SortedKeys(m map[string]Entry) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// SplitPath splits a clean relative path into its names.
func SplitPath(rel string) []string {
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
