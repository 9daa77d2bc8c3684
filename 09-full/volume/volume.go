//go:build linux

// Package volume is the store of named and anonymous volumes, as Docker's
// "local" driver keeps them: <data-root>/volumes/NAME/_data is what the
// container sees, <data-root>/volumes/NAME/volume.json what berth knows of
// it (labels, options, when it was made). A volume belongs to no
// container: it is made by `volume create` or by the first `-v NAME:/path`
// that names it, and goes only with `volume rm` or `volume prune` (an
// anonymous one, also with `rm -v` and `--rm`).
//
// The volumes directory is 0700 (09-full/store.Open makes and tightens
// it) and so is each volume's own directory: _data is the container's to
// fill, with setuid binaries if its root likes, and no user of the host
// may reach into it.
package volume

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// AnonymousLabel marks a volume made by -v /path (or --mount without a
// source), as Docker 23+ does: `volume prune` removes only these unless -a.
const AnonymousLabel = "com.docker.volume.anonymous"

// Volume is what `volume inspect` shows, in Docker's field names.
type Volume struct {
	Name       string            `json:"Name"`
	Driver     string            `json:"Driver"`
	Mountpoint string            `json:"Mountpoint"`
	CreatedAt  time.Time         `json:"CreatedAt"`
	Labels     map[string]string `json:"Labels"`
	Options    map[string]string `json:"Options"`
	Scope      string            `json:"Scope"`
}

// Anonymous reports whether v was made by -v /path.
func (v *Volume) Anonymous() bool {
	_, ok := v.Labels[AnonymousLabel]
	return ok
}

// ErrNotFound is a volume that is not in the store.
var ErrNotFound = errors.New("no such volume")

// nameRE is Docker's volume name rule (moby's volume/local RestrictedNamePattern).
var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// CheckName refuses a name Docker refuses: it becomes a directory name
// in the data root, so no slash, no "..", nothing hidden.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("create %s: %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", name, name)
	}
	return nil
}

// Store is the volumes of one data root.
type Store struct{ Root string }

// New is the store of dataRoot's volumes.
func New(dataRoot string) *Store { return &Store{Root: filepath.Join(dataRoot, "volumes")} }

// Data is where the volume's files are: the source of its bind mount.
func (s *Store) Data(name string) string { return filepath.Join(s.Root, name, "_data") }

func (s *Store) meta(name string) string { return filepath.Join(s.Root, name, "volume.json") }

// NewName is a random name for a volume made without one: 64 hex
// digits, as Docker's.
func NewName() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// Create makes the volume name, or returns the one that exists (as
// docker volume create does: a second create of a name is no error).
// created says which. The directory is made with O_EXCL semantics
// (mkdir), so two creates of one name make one volume.
func (s *Store) Create(name string, labels, opts map[string]string) (v *Volume, created bool, err error) {
	if err := CheckName(name); err != nil {
		return nil, false, err
	}
	o, err := checkOptions(opts)
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(s.Root, 0o700); err != nil {
		return nil, false, fmt.Errorf("create %s: %w", s.Root, err)
	}
	dir := filepath.Join(s.Root, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			v, err := s.waitGet(name)
			return v, false, err
		}
		return nil, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	fail := func(err error) (*Volume, bool, error) {
		os.RemoveAll(dir)
		return nil, false, err
	}
	// _data is 0755 root's, as Docker's: the container's own users must
	// reach into it; the 0700 above it keeps the host's users out.
	if err := os.Mkdir(s.Data(name), 0o755); err != nil {
		return fail(fmt.Errorf("create volume %s: %w", name, err))
	}
	if labels == nil {
		labels = map[string]string{}
	}
	v = &Volume{Name: name, Driver: "local", Mountpoint: s.Data(name), CreatedAt: time.Now().UTC().Truncate(time.Second),
		Labels: labels, Options: o, Scope: "local"}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fail(err)
	}
	// Written last and renamed into place: a volume.json is the sign of
	// a whole volume (Get waits a moment for one being made).
	tmp := s.meta(name) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fail(fmt.Errorf("create volume %s: %w", name, err))
	}
	if err := os.Rename(tmp, s.meta(name)); err != nil {
		return fail(fmt.Errorf("create volume %s: %w", name, err))
	}
	return v, true, nil
}

// waitGet reads a volume another create may be making right now.
func (s *Store) waitGet(name string) (*Volume, error) {
	for i := 0; ; i++ {
		v, err := s.Get(name)
		if err == nil || i == 50 || !errors.Is(err, ErrNotFound) {
			return v, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Get reads one volume. An anonymous volume of an older berth (a
// directory of 64 hex digits with _data and no volume.json) is read as
// one with the anonymous label.
func (s *Store) Get(name string) (*Volume, error) {
	if CheckName(name) != nil {
		return nil, fmt.Errorf("get %s: %w", name, ErrNotFound)
	}
	b, err := os.ReadFile(s.meta(name))
	if errors.Is(err, os.ErrNotExist) {
		fi, serr := os.Lstat(s.Data(name))
		if serr != nil || !fi.IsDir() || !isHex64(name) {
			return nil, fmt.Errorf("get %s: %w", name, ErrNotFound)
		}
		return &Volume{Name: name, Driver: "local", Mountpoint: s.Data(name), CreatedAt: fi.ModTime().UTC().Truncate(time.Second),
			Labels: map[string]string{AnonymousLabel: ""}, Options: map[string]string{}, Scope: "local"}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read volume %s: %w", name, err)
	}
	v := &Volume{}
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("read volume %s: %w", name, err)
	}
	v.Mountpoint = s.Data(name) // the data root may have moved
	if v.Labels == nil {
		v.Labels = map[string]string{}
	}
	if v.Options == nil {
		v.Options = map[string]string{}
	}
	return v, nil
}

// List reads every volume, by name.
func (s *Store) List() ([]*Volume, error) {
	ents, err := os.ReadDir(s.Root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var out []*Volume
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		v, err := s.Get(e.Name())
		if errors.Is(err, ErrNotFound) {
			continue // half made, or not a volume
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Remove deletes the volume and what it holds. The caller checks first
// that no container uses it.
func (s *Store) Remove(name string) error {
	if _, err := s.Get(name); err != nil {
		return err
	}
	// Renamed away first, so a half-removed volume is never listed nor
	// mounted; then removed (RemoveAll follows no symlink).
	dir := filepath.Join(s.Root, name)
	gone := filepath.Join(s.Root, ".removing-"+name)
	if err := os.Rename(dir, gone); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	return nil
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}
