//go:build linux

package layer

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A volume is a host directory bind-mounted into the container. It
// bypasses the union on purpose: its writes land on the host, outlive the
// container layer, never copy up, and so never show in diff or commit.
// The bind itself is made by stage 03's rootfs step, before pivot_root,
// from the spec's mounts; here we only parse the flag, pick the source and
// give the destination a mount point in the init layer.
type Volume struct {
	Source    string `json:"source"` // host path
	Dest      string `json:"dest"`   // absolute path in the container
	ReadOnly  bool   `json:"readOnly,omitempty"`
	Anonymous bool   `json:"anonymous,omitempty"` // -v /ctr: a fresh directory under the state dir
	// Stage 09's volume store: the volume's name, and Fill for a named
	// volume that is seeded from the image, as an anonymous one, but
	// only while it is empty (a second container finds the first's files).
	Name string `json:"name,omitempty"`
	Fill bool   `json:"fill,omitempty"`
}

// ParseVolume reads HOST:CTR[:ro|rw] or CTR (an anonymous volume).
func ParseVolume(s string) (Volume, error) {
	parts := strings.Split(s, ":")
	var v Volume
	switch len(parts) {
	case 1:
		v = Volume{Dest: parts[0], Anonymous: true}
	case 2, 3:
		v = Volume{Source: parts[0], Dest: parts[1]}
		if len(parts) == 3 {
			switch parts[2] {
			case "ro":
				v.ReadOnly = true
			case "rw":
			default:
				return v, fmt.Errorf("invalid volume %q: mode must be ro or rw", s)
			}
		}
		if !filepath.IsAbs(v.Source) {
			return v, fmt.Errorf("invalid volume %q: the host path must be absolute (named volumes come with a later stage)", s)
		}
		v.Source = filepath.Clean(v.Source)
		if _, err := os.Stat(v.Source); err != nil {
			return v, fmt.Errorf("invalid volume %q: host path %s: %w (create it first)", s, v.Source, err)
		}
	default:
		return v, fmt.Errorf("invalid volume %q: use HOST:CONTAINER[:ro] or CONTAINER", s)
	}
	if !path.IsAbs(v.Dest) || path.Clean(v.Dest) == "/" {
		return v, fmt.Errorf("invalid volume %q: the container path must be absolute and not /", s)
	}
	for _, p := range strings.Split(v.Dest, "/") {
		if p == ".." {
			return v, fmt.Errorf("invalid volume %q: the container path must not contain \"..\" components", s)
		}
	}
	v.Dest = path.Clean(v.Dest)
	return v, nil
}

// Mount is the spec entry stage 03 applies: an rbind, read-only on
// request, and then read-only all the way down ("rro"): a mount under the
// host directory (a tmpfs, another disk) is part of the rbind, and would
// otherwise stay writable.
func (v Volume) Mount() specs.Mount {
	opts := []string{"rbind"}
	if v.ReadOnly {
		opts = append(opts, "ro", "rro")
	}
	return specs.Mount{Destination: v.Dest, Source: v.Source, Type: "bind", Options: opts}
}

// isFile: a file bind-mounts onto a file, anything else onto a directory.
func (v Volume) isFile() bool {
	st, err := os.Stat(v.Source)
	return err == nil && st.Mode().IsRegular()
}
