//go:build linux

package image

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"berth/07-unionfs/tree"
)

// tree is a read-only view of a root filesystem as a container would see
// it, without mounting anything: the union of layer directories (top
// first), with overlay's rules: the topmost entry of a name wins, a
// directory merges with the directories of the same name below it until an
// opaque one, a whiteout (a 0/0 character device) hides what is below. A
// build reads images through it (where does COPY's destination lead, does
// WORKDIR exist, what does COPY --from take) and reads the build context
// as a tree of one plain layer.
//
// Paths given to it are clean and absolute inside the tree. Every lookup
// goes down one name at a time with lstat, taking only real directories:
// a symlink in a layer is an entry to read, never a way to walk out of the
// layer. Symlinks are followed only by securejoin (resolve), which keeps
// them inside the tree's root as the container's kernel would.
type View struct {
	Layers []string
	Plain  bool  // a plain directory (the context): no whiteouts or opaque marks
	Files  int64 // an image's: what its layers' files add up to (bound.go)
}

// lookup finds rel: its stat (from the topmost layer that has it) and the
// real paths that make it, top first (several for a merged directory).
func (t View) lookup(rel string) (*unix.Stat_t, []string, error) {
	cand := t.Layers
	var top *unix.Stat_t
	if len(cand) == 0 {
		return nil, nil, nil
	}
	var st unix.Stat_t
	if err := unix.Lstat(cand[0], &st); err != nil {
		return nil, nil, &fs.PathError{Op: "lstat", Path: cand[0], Err: err}
	}
	top = &st
	for _, name := range tree.SplitPath(rel) {
		if top.Mode&unix.S_IFMT != unix.S_IFDIR {
			return nil, nil, nil // a file in the middle of the path
		}
		var next []string
		top = nil
		for _, dir := range cand {
			p := filepath.Join(dir, name)
			var s unix.Stat_t
			if err := unix.Lstat(p, &s); err != nil {
				if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
					continue
				}
				return nil, nil, &fs.PathError{Op: "lstat", Path: p, Err: err}
			}
			if !t.Plain && isWhiteoutStat(&s) {
				break
			}
			if top == nil {
				top = &s
			}
			if s.Mode&unix.S_IFMT != unix.S_IFDIR {
				if len(next) == 0 {
					next = []string{p}
				}
				break // below a directory, a file of that name is hidden
			}
			next = append(next, p)
			if !t.Plain && opaque(p) {
				break
			}
		}
		if top == nil {
			return nil, nil, nil
		}
		cand = next
	}
	return top, cand, nil
}

func isWhiteoutStat(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// stat is lookup's stat and topmost real path; ok is false when rel is
// not in the tree.
func (t View) Stat(rel string) (st *unix.Stat_t, real string, ok bool, err error) {
	st, paths, err := t.lookup(rel)
	if err != nil || st == nil {
		return nil, "", false, err
	}
	return st, paths[0], true, nil
}

// ReadDir lists a directory of the tree: the names of every layer's
// directory merged, minus what a whiteout hides, sorted.
func (t View) ReadDir(rel string) ([]string, error) {
	_, dirs, err := t.lookup(rel)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{} // true: shown; false: whited out above
	for _, d := range dirs {
		f, err := os.Open(d)
		if err != nil {
			return nil, err
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if _, done := seen[n]; done {
				continue
			}
			var s unix.Stat_t
			if err := unix.Lstat(filepath.Join(d, n), &s); err != nil {
				return nil, err
			}
			seen[n] = t.Plain || !isWhiteoutStat(&s)
		}
	}
	var out []string
	for n, shown := range seen {
		if shown {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

// resolve follows the symlinks of p (relative to base, a directory of the
// tree) inside the tree, as the container's kernel would from its root:
// "..", absolute links and links to links all stay in the tree.
func (t View) Resolve(base, p string) (string, error) {
	if !path.IsAbs(p) {
		p = path.Join(base, p)
	}
	return securejoin.SecureJoinVFS("/", p, viewVFS{t})
}

// treeVFS lets securejoin read the tree.
type viewVFS struct{ v View }

func (v viewVFS) Lstat(name string) (os.FileInfo, error) {
	_, real, ok, err := v.v.Stat(name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: unix.ENOENT}
	}
	return os.Lstat(real)
}

func (v viewVFS) Readlink(name string) (string, error) {
	_, real, ok, err := v.v.Stat(name)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: unix.ENOENT}
	}
	return os.Readlink(real)
}

// opaque: overlay's mark on a directory that hides the layers below it,
// as root (trusted.*) or a rootless unpack (user.*) set it.
func opaque(dir string) bool {
	for _, name := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		buf := make([]byte, 4)
		n, err := unix.Lgetxattr(dir, name, buf)
		if err == nil && n == 1 && buf[0] == 'y' {
			return true
		}
	}
	return false
}
