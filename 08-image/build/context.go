//go:build linux

package build

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"golang.org/x/sys/unix"

	"berth/08-image/image"
	"berth/08-image/store"
)

// copySource is where COPY reads.
type copySource struct {
	view   image.View
	what   string                         // "build context", "stage builder"
	ignore *patternmatcher.PatternMatcher // .dockerignore; nil: none
}

// openContext opens the build context and reads its .dockerignore.
func openContext(dir string) (copySource, error) {
	abs, err := filepath.Abs(dir)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return copySource{}, fmt.Errorf("build context %s: %w", dir, err)
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return copySource{}, fmt.Errorf("build context %s is not a directory", dir)
	}
	src := copySource{view: image.View{Layers: []string{abs}, Plain: true}, what: "build context"}
	// Bounded and a regular file, as the Dockerfile (build_parse.go): a
	// repository's .dockerignore is as hostile as its Dockerfile.
	f, err := os.OpenFile(filepath.Join(abs, ".dockerignore"), os.O_RDONLY|unix.O_NONBLOCK, 0)
	if errors.Is(err, os.ErrNotExist) {
		return src, nil
	}
	if err != nil {
		return src, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return src, fmt.Errorf(".dockerignore is not a regular file: refused")
	}
	b, err := io.ReadAll(io.LimitReader(f, maxDockerfile+1))
	if err != nil {
		return src, fmt.Errorf(".dockerignore: %w", err)
	}
	if len(b) > maxDockerfile {
		return src, fmt.Errorf(".dockerignore is over %s: refused", store.FormatSize(maxDockerfile))
	}
	patterns, err := ignorefile.ReadAll(bytes.NewReader(b))
	if err != nil {
		return src, fmt.Errorf(".dockerignore: %w", err)
	}
	if src.ignore, err = patternmatcher.New(patterns); err != nil {
		return src, fmt.Errorf(".dockerignore: %w", err)
	}
	return src, nil
}

// excluded reports whether .dockerignore keeps rel (clean, absolute in the
// context) out: the last pattern that matches it or a parent of it
// decides, an exception (!pattern) bringing it back.
func (src copySource) excluded(rel string) (bool, error) {
	if src.ignore == nil || rel == "/" {
		return false, nil
	}
	return src.ignore.MatchesOrParentMatches(strings.TrimPrefix(rel, "/"))
}

// mayReenter reports whether rel, excluded, is a directory that an
// exception may reach into: the .dockerignore has exceptions, and rel is a
// real directory. Its entries are then tested one by one.
func (src copySource) mayReenter(rel string) bool {
	if src.ignore == nil || !src.ignore.Exclusions() {
		return false
	}
	st, _, ok, err := src.view.Stat(rel)
	return err == nil && ok && st.Mode&unix.S_IFMT == unix.S_IFDIR
}

// hidden reports whether .dockerignore leaves nothing of rel: rel is
// excluded, and it is not a directory with something an exception brings
// back somewhere below it.
func (src copySource) hidden(rel string) (bool, error) {
	ex, err := src.excluded(rel)
	if err != nil || !ex {
		return false, err
	}
	if !src.mayReenter(rel) {
		return true, nil
	}
	names, err := src.view.ReadDir(rel)
	if err != nil {
		return false, err
	}
	for _, n := range names {
		if h, err := src.hidden(path.Join(rel, n)); err != nil || !h {
			return false, err
		}
	}
	return true, nil
}

// sources turns COPY's source arguments into paths of the source tree:
// wildcards expanded, symlinks followed inside the tree, what
// .dockerignore excludes left out.
func (src copySource) sources(in instruction, args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		if c := path.Clean(a); c == ".." || strings.HasPrefix(c, "../") {
			return nil, in.errorf("%s: forbidden path outside the %s", a, src.what)
		}
		rel := path.Clean("/" + a)
		matches := []string{rel}
		if strings.ContainsAny(rel, "*?[") {
			var err error
			if matches, err = src.glob(rel); err != nil {
				return nil, in.errorf("%s: %v", a, err)
			}
			if len(matches) == 0 {
				return nil, in.errorf("%s: no source files were specified (nothing in the %s matches)", a, src.what)
			}
		}
		for _, m := range matches {
			r, err := src.view.Resolve("/", m)
			if err != nil {
				return nil, in.errorf("%s: %v", a, err)
			}
			_, _, ok, err := src.view.Stat(r)
			if err != nil {
				return nil, in.errorf("%s: %v", a, err)
			}
			ex1, err1 := src.hidden(m)
			ex2, err2 := src.hidden(r)
			if err := errors.Join(err1, err2); err != nil {
				return nil, err
			}
			if !ok || ex1 || ex2 {
				name := a
				if m != rel {
					name = a + ": " + strings.TrimPrefix(m, "/")
				}
				why := ""
				if lst, _, _, _ := src.view.Stat(m); lst != nil && lst.Mode&unix.S_IFMT == unix.S_IFLNK {
					why = " (a symlink leads only to a file of the " + src.what + ")"
				}
				return nil, in.errorf("%s: file not found in %s or excluded by .dockerignore%s", name, src.what, why)
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// glob expands a pattern one name at a time, as filepath.Glob does, but
// over the tree and without following symlinked directories.
func (src copySource) glob(pattern string) ([]string, error) {
	cur := []string{"/"}
	for _, comp := range splitRel(pattern) {
		var next []string
		for _, dir := range cur {
			if st, _, ok, err := src.view.Stat(dir); err != nil {
				return nil, err
			} else if !ok || st.Mode&unix.S_IFMT != unix.S_IFDIR {
				continue
			}
			if !strings.ContainsAny(comp, "*?[") {
				if _, _, ok, err := src.view.Stat(path.Join(dir, comp)); err != nil {
					return nil, err
				} else if ok {
					next = append(next, path.Join(dir, comp))
				}
				continue
			}
			names, err := src.view.ReadDir(dir)
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				ok, err := path.Match(comp, n)
				if err != nil {
					return nil, err
				}
				if ex, err := src.hidden(path.Join(dir, n)); err != nil {
					return nil, err
				} else if ok && !ex {
					next = append(next, path.Join(dir, n))
				}
			}
		}
		cur = next
	}
	return cur, nil
}

// splitRel splits a path into its names, dropping empty ones and ".":
// a pattern keeps its "..", which the tree then finds no entry for.
func splitRel(rel string) []string {
	var out []string
	for _, p := range strings.Split(rel, "/") {
		if p != "" && p != "." {
			out = append(out, p)
		}
	}
	return out
}
