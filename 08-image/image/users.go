//go:build linux

package image

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"

	"berth/07-unionfs/tree"
)

// An image's /etc/passwd and /etc/group are hostile input like the rest of
// it. They are parsed by github.com/moby/sys/user, the parser runc and
// containerd use, with one step in front of it: the library reads a number
// it cannot parse as 0 ("misbehaving configuration files"), so a line
// "app:x:1000:staff:..." would give the user gid 0, root's group, and a
// group line "wheel:x:abc:app" would add gid 0 to the user's groups.
// idFile keeps only the well-formed lines for the library and remembers
// the others: a lookup that one of them could answer is refused, naming
// the line; any other malformed line is skipped, as glibc skips it.

// maxIDFile bounds /etc/passwd and /etc/group: read whole into memory.
const maxIDFile = 4 << 20

// idFile is /etc/passwd or /etc/group as the image has it.
type idFile struct {
	path string // /etc/passwd
	good []byte // the well-formed lines; nil: the image has no such file
	bad  []badLine
}

// badLine is a malformed line: its number, its fields, and what is wrong.
type badLine struct {
	n      int
	fields []string
	why    string
}

func (b badLine) err(path string) error {
	return fmt.Errorf("%s line %d %q: %s: refused", path, b.n, tree.Trunc(strings.Join(b.fields, ":"), 40), b.why)
}

// readIDFile reads /etc/passwd (idFields 2 and 3: uid, gid; at least 4
// fields) or /etc/group (idField 2: gid; at least 3 fields) from the
// image, as the merged tree shows it.
func readIDFile(t View, path string) (*idFile, error) {
	b, ok, err := t.readFile(path, maxIDFile)
	if err != nil || !ok {
		return &idFile{path: path}, err
	}
	f := &idFile{path: path, good: []byte{}}
	minFields, ids := 4, []int{2, 3}
	if path == "/etc/group" {
		minFields, ids = 3, []int{2}
	}
	for i, line := range strings.Split(string(b), "\n") {
		// As the library reads a line: trimmed; blank lines and comments
		// are nothing.
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Split(line, ":")
		why := ""
		if len(fields) < minFields {
			why = fmt.Sprintf("%d fields, fewer than %d", len(fields), minFields)
		} else {
			for _, k := range ids {
				if _, ok := parseID(fields[k]); !ok {
					what := "gid"
					if k == 2 && path == "/etc/passwd" {
						what = "uid"
					}
					why = fmt.Sprintf("%s %q is not a number from 0 to %d", what, fields[k], math.MaxInt32)
					break
				}
			}
		}
		if why != "" {
			f.bad = append(f.bad, badLine{n: i + 1, fields: fields, why: why})
			continue
		}
		f.good = append(append(f.good, line...), '\n')
	}
	return f, nil
}

// parseID reads a uid or gid as the kernel and the library take it:
// decimal digits only (no sign, no space), at most MaxInt32, the bound
// github.com/moby/sys/user keeps for a user's argument too.
func parseID(s string) (int, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > math.MaxInt32 {
		return 0, false
	}
	return int(n), true
}

// reader is the well-formed lines for the library; nil (no file) when
// the image has none, which the library reads as "no entries".
func (f *idFile) reader() io.Reader {
	if f.good == nil {
		return nil
	}
	return bytes.NewReader(f.good)
}

// refuse returns the error of the first malformed line match accepts.
func (f *idFile) refuse(match func(fields []string) bool) error {
	for _, b := range f.bad {
		if match(b.fields) {
			return b.err(f.path)
		}
	}
	return nil
}

// names matches a line by its name field, or by its id field (k) when
// that parses and is id.
func names(name string, k, id int) func([]string) bool {
	return func(fields []string) bool {
		if name != "" && fields[0] == name {
			return true
		}
		got, ok := 0, false
		if len(fields) > k {
			got, ok = parseID(fields[k])
		}
		return id >= 0 && ok && got == id
	}
}

// readFile reads the regular file at p (absolute, in the image) as a
// container of this tree would see it: symbolic links followed inside the
// tree (resolve), whiteouts and opaque directories honoured (lookup); ok
// is false when there is none. The file is opened through an os.Root on
// the layer that holds it, a handle no name can leave, and only if it is a
// regular file (a FIFO would block, a device would read the host's).
func (t View) readFile(p string, max int64) (b []byte, ok bool, err error) {
	resolved, err := t.Resolve("/", p)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", p, err)
	}
	st, real, ok, err := t.Stat(resolved)
	if err != nil || !ok {
		return nil, false, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, false, fmt.Errorf("%s is not a regular file in the image: refused", p)
	}
	for _, l := range t.Layers {
		rel, err := filepath.Rel(l, real)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			continue
		}
		root, err := os.OpenRoot(l)
		if err != nil {
			return nil, false, err
		}
		defer root.Close()
		f, err := tree.OpenRegular(root, rel)
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", p, err)
		}
		defer f.Close()
		if b, err = io.ReadAll(io.LimitReader(f, max+1)); err != nil {
			return nil, false, fmt.Errorf("read %s: %w", p, err)
		}
		if int64(len(b)) > max {
			return nil, false, fmt.Errorf("%s is over %d bytes: refused", p, max)
		}
		return b, true, nil
	}
	return nil, false, fmt.Errorf("%s: %s is in none of the image's layers", p, real)
}

// LookupUserID is COPY --chown's user: a number as it is, a name from the
// image's /etc/passwd.
func LookupUserID(name string, t View) (int, error) {
	if id, ok := parseID(name); ok {
		return id, nil
	}
	f, err := readIDFile(t, "/etc/passwd")
	if err != nil {
		return 0, err
	}
	if err := f.refuse(names(name, 2, -1)); err != nil {
		return 0, err
	}
	us, err := user.ParsePasswdFilter(orEmpty(f.reader()), func(u user.User) bool { return u.Name == name })
	if err != nil {
		return 0, err
	}
	if len(us) == 0 {
		return 0, fmt.Errorf("--chown: no user %q in the image's /etc/passwd", name)
	}
	return us[0].Uid, nil
}

// LookupGroupID is COPY --chown's group, from the image's /etc/group.
func LookupGroupID(name string, t View) (int, error) {
	if id, ok := parseID(name); ok {
		return id, nil
	}
	f, err := readIDFile(t, "/etc/group")
	if err != nil {
		return 0, err
	}
	if err := f.refuse(names(name, 2, -1)); err != nil {
		return 0, err
	}
	gs, err := user.ParseGroupFilter(orEmpty(f.reader()), func(g user.Group) bool { return g.Name == name })
	if err != nil {
		return 0, err
	}
	if len(gs) == 0 {
		return 0, fmt.Errorf("--chown: no group %q in the image's /etc/group", name)
	}
	return gs[0].Gid, nil
}

func orEmpty(r io.Reader) io.Reader {
	if r == nil {
		return strings.NewReader("")
	}
	return r
}
