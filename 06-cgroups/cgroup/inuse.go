//go:build linux

package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CheckUnused refuses a group that already exists and holds processes
// (in it or in a group below it), in any hierarchy. A container's group
// is the container's alone: Cleanup kills everything in it and removes
// it, so a cgroupsPath that named a host service's group
// (/system.slice/ssh.service) or another container's would have the
// container's end kill that service or that container. An existing empty
// group is taken, as runc takes one.
func CheckUnused(mode Mode, path string) error {
	if !strings.HasPrefix(path, "/") || filepath.Clean(path) != path || path == "/" {
		return fmt.Errorf("cgroupsPath %q: want an absolute, clean path below the cgroup root", path)
	}
	for _, dir := range Dirs(mode, path) {
		pid, err := firstProc(dir)
		if err != nil {
			return err
		}
		if pid != 0 {
			return fmt.Errorf("cgroupsPath %s: the cgroup exists and holds processes (pid %d, in %s): it is not this container's", path, pid, dir)
		}
	}
	return nil
}

// firstProc returns a process of the group at dir or of a group below
// it; 0 when there is none, or no such group.
func firstProc(dir string) (int, error) {
	found := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir && errors.Is(err, os.ErrNotExist) {
				return fs.SkipAll
			}
			if errors.Is(err, os.ErrNotExist) {
				return nil // a group below removed while we looked
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		f, err := os.Open(filepath.Join(p, "cgroup.procs"))
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", filepath.Join(p, "cgroup.procs"), err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		if sc.Scan() {
			if pid, err := strconv.Atoi(sc.Text()); err == nil && pid > 0 {
				found = pid
				return fs.SkipAll
			}
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("read %s: %w", filepath.Join(p, "cgroup.procs"), err)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("cgroup %s: %w", dir, err)
	}
	return found, nil
}
