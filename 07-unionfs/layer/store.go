//go:build linux

package layer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth/01-uts/spine"
	"berth/07-unionfs/diff"
	"berth/07-unionfs/tree"
)

// The layer store lives under the data root, so it outlives a run:
//
//	<data-root>/layers/                 0700: layers may hold setuid files
//	  l/<short id> -> a layer directory  short names for the mount data
//	  sha256/<digest>/                   a tarball applied (--image), shared
//	  containers/<id>/
//	    layer.json                       driver and stack, for diff/commit/rm
//	    init/                            the init layer: /etc/hosts, mount points
//	    diff/                            overlay: the upper dir; copy: the full tree
//	    work/                            overlay's work dir
//	    merged/                          overlay's mount point
//	    started                          the container ran (kept after exit)
//
// Every path derives from the data root and the container id, so a later
// run that collects a killed one finds the same directories.

// Driver names.
const (
	DriverOverlay = "overlay"
	DriverCopy    = "copy"
)

// Store is the layer storage of one data root.
type Store struct {
	Root string
	// inside: a verb runs inside the container's user namespace (see
	// unshare.go), and the ids it sees are the container's already.
	inside bool
}

// NewStore returns the store under dataRoot.
func NewStore(dataRoot string) Store { return Store{Root: filepath.Join(dataRoot, "layers")} }

// Init creates the store directory, private to root.
func (s Store) Init() error {
	if err := os.MkdirAll(s.Root, 0o700); err != nil {
		return fmt.Errorf("create layer store %s: %w", s.Root, err)
	}
	return nil
}

// Record is a container layer's description, kept beside it.
type Record struct {
	ID        string   `json:"id"`
	Driver    string   `json:"driver"`
	Lowers    []string `json:"lowers"`              // read-only layers, top first, init layer excluded
	Userxattr bool     `json:"userxattr,omitempty"` // overlay in a user namespace: user.overlay.* xattrs
	Rootless  bool     `json:"rootless,omitempty"`  // made without root: copies keep what they may (see copier)
	// The container's user namespace maps, if it had one of its own: its
	// layer holds host ids, a commit the ids the container saw.
	UIDMap []specs.LinuxIDMapping `json:"uidMap,omitempty"`
	GIDMap []specs.LinuxIDMapping `json:"gidMap,omitempty"`
}

// Paths of one container layer.
func (s Store) Dir(id string) string       { return filepath.Join(s.Root, "containers", id) }
func (s Store) initDir(id string) string   { return filepath.Join(s.Dir(id), "init") }
func (s Store) diffDir(id string) string   { return filepath.Join(s.Dir(id), "diff") }
func (s Store) workDir(id string) string   { return filepath.Join(s.Dir(id), "work") }
func (s Store) mergedDir(id string) string { return filepath.Join(s.Dir(id), "merged") }

// Exists reports whether a container layer exists for id.
func (s Store) Exists(id string) bool {
	_, err := os.Lstat(s.Dir(id))
	return err == nil
}

// Load reads a container's record.
func (s Store) Load(id string) (*Record, error) {
	if err := spine.ValidID(id); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(s.Dir(id), "layer.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no container layer %q in %s", id, s.Root)
	}
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode %s/layer.json: %w", s.Dir(id), err)
	}
	return &r, nil
}

func (s Store) save(r *Record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.Dir(r.ID), "layer.json"), b, 0o600)
}

// owners translates the ids of a container's layer (see owners).
func (s Store) owners(r *Record) diff.Owners {
	return diff.Owners{UIDs: r.UIDMap, GIDs: r.GIDMap, Inside: s.inside}
}

// stack is what the container layer sits on: the init layer, then the
// image's layers.
func (s Store) stack(r *Record) []string {
	return append([]string{s.initDir(r.ID)}, r.Lowers...)
}

// RootPath is the container's root directory for a driver.
func (s Store) RootPath(r *Record) string {
	if r.Driver == DriverCopy {
		return s.diffDir(r.ID)
	}
	return s.mergedDir(r.ID)
}

// Create makes a new container layer on lowers (top first) and attaches
// it; writeInit fills the init layer first. It returns the container's
// root directory.
func (s Store) Create(r *Record, writeInit func(initDir string, below []string) error) (string, error) {
	if err := s.New(r, writeInit); err != nil {
		return "", err
	}
	return s.Attach(r)
}

// New makes the directories of a new container layer, its record and its
// init layer, without attaching it.
func (s Store) New(r *Record, writeInit func(initDir string, below []string) error) error {
	if err := s.Init(); err != nil {
		return err
	}
	// The store's directories are made here, as the user: the mount
	// runs as the container's root, which with --userns=keep-id is a
	// subordinate id, and a links directory it made would be one the
	// user could no longer remove a link from.
	for _, d := range []string{"containers", linkDir} {
		if err := os.MkdirAll(filepath.Join(s.Root, d), 0o700); err != nil {
			return err
		}
	}
	dir := s.Dir(r.ID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("container layer %q already exists: remove it first", r.ID)
		}
		return err
	}
	if err := s.save(r); err != nil {
		return err
	}
	for _, d := range []string{s.initDir(r.ID), s.diffDir(r.ID)} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	if writeInit != nil {
		if err := writeInit(s.initDir(r.ID), r.Lowers); err != nil {
			return fmt.Errorf("init layer: %w", err)
		}
	}
	return nil
}

// Attach makes a new container layer the container's root: it mounts the
// overlay (on the merged directory) or fills the copy (the diff directory),
// and returns that root.
func (s Store) Attach(r *Record) (string, error) {
	if r.Driver == DriverCopy {
		if err := materialize(s.stack(r), s.diffDir(r.ID), r.Rootless); err != nil {
			return "", fmt.Errorf("copy layers into %s: %w", s.diffDir(r.ID), err)
		}
		return s.diffDir(r.ID), nil
	}
	return s.mergedDir(r.ID), s.Mount(r)
}

// Mount mounts a container's overlay on its merged directory.
func (s Store) Mount(r *Record) error {
	for _, d := range []string{s.workDir(r.ID), s.mergedDir(r.ID)} {
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	var lowers []string
	for _, l := range unionStack(s.stack(r)) {
		rel, err := shortLink(s.Root, r.ID, l)
		if err != nil {
			return err
		}
		lowers = append(lowers, rel)
	}
	c := filepath.Join("containers", r.ID)
	data, err := overlayData(lowers, filepath.Join(c, "diff"), filepath.Join(c, "work"), r.Userxattr)
	if err != nil {
		return err
	}
	return mountOverlay(s.Root, s.mergedDir(r.ID), data)
}

// unionStack is the part of a stack of layers (top first) that the union
// shows: down to the first layer whose root is opaque (a layer with
// .wh..wh..opq at its root replaces everything below it, as the copy
// driver's StackDir.entries reads it). Overlay itself never looks at the
// opaque mark on a lower layer's root: the mount's root is made of every
// layer's root. So the layers below are left out of the mount instead.
func unionStack(layers []string) []string {
	for i, l := range layers {
		t, err := tree.Open(l)
		if err != nil {
			return layers // the mount says what is wrong
		}
		opaque := tree.OpaqueAt(t, "")
		t.Close()
		if opaque {
			return layers[:i+1]
		}
	}
	return layers
}

// Unmount unmounts a container's overlay if it is mounted here;
// idempotent. A rootless container's overlay is never mounted here: it
// lives in the container's own mount namespace and goes with it (and a
// user may not even try umount(2) in the host's).
func (s Store) Unmount(id string) error {
	if !isMountpoint(s.mergedDir(id)) {
		return nil
	}
	return unmount(s.mergedDir(id))
}

// Remove unmounts and deletes a container layer. It refuses to delete
// while something is still mounted on it: removing through a live mount
// would delete files of the layers below.
func (s Store) Remove(id string) error {
	var links []string
	r, err := s.Load(id)
	if err == nil {
		for _, l := range s.stack(r) {
			links = append(links, filepath.Join(s.Root, linkName(id, l)))
		}
	}
	if err := s.Unmount(id); err != nil {
		return err
	}
	if isMountpoint(s.mergedDir(id)) {
		return fmt.Errorf("%s is still mounted: not removing it", s.mergedDir(id))
	}
	// A layer that may hold the subordinate ids' files goes entirely
	// inside a user namespace with the container's maps: overlay's work
	// directory was made by the container's root (with keep-id, one of
	// those ids), and so may the links be. Its root needs no chmod there.
	if r != nil && needsUserns(r) {
		return s.removeInUserns(r, links)
	}
	// Overlay leaves its work directory mode 000, and may keep a spare
	// whiteout in it: its owner (a rootless user) must open it up first.
	if err := os.Chmod(filepath.Join(s.workDir(id), "work"), 0o700); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove container layer %s: %w", s.Dir(id), err)
	}
	// The links first: the record that names them goes with the rest.
	for _, l := range links {
		if err := os.Remove(l); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := os.RemoveAll(s.Dir(id)); err != nil {
		return fmt.Errorf("remove container layer %s: %w", s.Dir(id), err)
	}
	return nil
}

// markStarted records that the container ran: from then on only rm or
// --rm removes its layer.
func (s Store) markStarted(id string) error {
	return os.WriteFile(filepath.Join(s.Dir(id), "started"), nil, 0o600)
}

func (s Store) started(id string) bool {
	_, err := os.Stat(filepath.Join(s.Dir(id), "started"))
	return err == nil
}

// Changes lists what the container changed, as docker diff does, sorted
// by path (a parent always comes before what is in it).
func (s Store) Changes(id string) ([]diff.Change, error) {
	r, err := s.Load(id)
	if err != nil {
		return nil, err
	}
	var changes []diff.Change
	if r.Driver == DriverCopy {
		changes, err = diff.Copy(s.stack(r), s.diffDir(id), r.Rootless, s.owners(r))
	} else {
		changes, err = diff.Overlay(s.stack(r), s.diffDir(id))
	}
	sort.SliceStable(changes, func(i, j int) bool { return changes[i].Path < changes[j].Path })
	return changes, err
}

// Commit writes the container layer as an OCI layer tarball.
func (s Store) Commit(id string, w io.Writer) (int64, error) {
	r, err := s.Load(id)
	if err != nil {
		return 0, err
	}
	changes, err := s.Changes(id)
	if err != nil {
		return 0, fmt.Errorf("commit %s: %w", id, err)
	}
	n, err := diff.WriteLayer(w, changes, s.owners(r))
	if err != nil {
		return n, fmt.Errorf("commit %s: %w", id, err)
	}
	return n, nil
}
