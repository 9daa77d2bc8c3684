//go:build linux

package cgroup

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/cgroups/v3"
)

// Root is where the kernel's cgroup filesystems are mounted.
const Root = "/sys/fs/cgroup"

// Parent is the group every berth container's group lives under:
// /sys/fs/cgroup/<controller>/berth/<id> on v1, /sys/fs/cgroup/berth/<id> on v2.
const Parent = "berth"

// A Mode is how the host mounts its cgroups.
type Mode int

const (
	// V1: one hierarchy per controller (cpu, memory, pids...) under /sys/fs/cgroup.
	V1 Mode = iota + 1
	// Hybrid: the v1 hierarchies, plus an empty v2 tree at
	// /sys/fs/cgroup/unified that only tracks processes. Limits are v1's.
	Hybrid
	// V2: a single unified tree at /sys/fs/cgroup ("pure" cgroup v2).
	V2
)

func (m Mode) String() string {
	switch m {
	case V1:
		return "v1"
	case Hybrid:
		return "v1 (hybrid)"
	case V2:
		return "v2"
	}
	return "unknown"
}

// Unified reports whether limits are written to the v2 tree.
func (m Mode) Unified() bool { return m == V2 }

// DetectMode asks the library what the filesystem at /sys/fs/cgroup is:
// statfs says cgroup2 (v2), or a tmpfs of v1 mounts, with or without a
// cgroup2 at /sys/fs/cgroup/unified (hybrid or v1).
func DetectMode() (Mode, error) {
	switch cgroups.Mode() {
	case cgroups.Legacy:
		return V1, nil
	case cgroups.Hybrid:
		return Hybrid, nil
	case cgroups.Unified:
		return V2, nil
	}
	return 0, errors.New("no cgroup filesystem at " + Root + ": mount cgroup2 there (mount -t cgroup2 none " + Root + ")")
}

// GroupPath is the group of a container, relative to the root of each
// hierarchy. It depends only on the id, so a later run can find and
// remove the group of a runtime that was killed.
func GroupPath(id string) string { return "/" + Parent + "/" + id }

// V1Controllers lists the v1 hierarchies mounted under /sys/fs/cgroup,
// the named ones (name=systemd) included, as their directory names.
func V1Controllers() []string {
	var out []string
	entries, _ := os.ReadDir(Root)
	for _, e := range entries {
		if e.Name() == "unified" {
			continue
		}
		if _, err := os.Stat(filepath.Join(Root, e.Name(), "cgroup.procs")); err == nil {
			out = append(out, e.Name())
		}
	}
	return out
}

// V2Controllers lists the controllers the v2 root offers.
func V2Controllers() []string {
	b, err := os.ReadFile(filepath.Join(Root, "cgroup.controllers"))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

// Dirs are the directories a group occupies on the host: one per v1
// hierarchy, or one in the v2 tree.
func Dirs(mode Mode, path string) []string {
	if mode.Unified() {
		return []string{filepath.Join(Root, path)}
	}
	var out []string
	for _, c := range V1Controllers() {
		out = append(out, filepath.Join(Root, c, path))
	}
	return out
}

// Exists reports whether any directory of the group is still there.
func Exists(mode Mode, path string) bool {
	for _, d := range Dirs(mode, path) {
		if _, err := os.Stat(d); err == nil {
			return true
		}
	}
	return false
}
