//go:build linux

package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Update changes the limits of a group whose processes run (docker
// update): memory (with memory+swap), the CPU quota, the PID limit.
func (g *Group) Update(res *specs.LinuxResources) error {
	if res == nil {
		return nil
	}
	if g.v2 != nil {
		if err := g.v2.Update(v2Resources(res)); err != nil {
			return fmt.Errorf("update cgroup %s: %w", g.path, err)
		}
		if mem := res.Memory; mem != nil && mem.Swap != nil && mem.Limit != nil {
			v := "max"
			if *mem.Swap > 0 {
				v = strconv.FormatInt(*mem.Swap-*mem.Limit, 10)
			}
			err := writeFile(filepath.Join(Root, g.path, "memory.swap.max"), v)
			if err != nil && !(errors.Is(err, os.ErrNotExist) && *mem.Swap == 2**mem.Limit) {
				return fmt.Errorf("--memory-swap: %w", err)
			}
		}
	} else {
		if err := g.updateMemoryV1(res.Memory); err != nil {
			return err
		}
		rest := *res
		rest.Memory = nil
		if err := g.v1.Update(&rest); err != nil {
			return fmt.Errorf("update cgroup %s: %w", g.path, err)
		}
	}
	if res.Pids != nil && res.Pids.Limit != nil {
		if *res.Pids.Limit <= 0 {
			return writeFile(g.PidsMax(), "max")
		}
		return g.SetPids(*res.Pids.Limit)
	}
	return nil
}

// updateMemoryV1 writes v1's memory.limit_in_bytes and
// memory.memsw.limit_in_bytes in the order the kernel accepts: the limit
// may never exceed memory+swap, so a raise writes memory+swap first, a
// cut the limit first.
func (g *Group) updateMemoryV1(m *specs.LinuxMemory) error {
	if m == nil || m.Limit == nil {
		return nil
	}
	dir := filepath.Join(Root, "memory", g.path)
	limit := func() error {
		return writeFile(filepath.Join(dir, "memory.limit_in_bytes"), strconv.FormatInt(*m.Limit, 10))
	}
	swap := func() error {
		if m.Swap == nil {
			return nil
		}
		err := writeFile(filepath.Join(dir, "memory.memsw.limit_in_bytes"), strconv.FormatInt(*m.Swap, 10))
		if errors.Is(err, os.ErrNotExist) && *m.Swap == 2**m.Limit {
			return nil // no swap accounting: Docker's default is dropped quietly
		}
		return err
	}
	first, second := limit, swap
	cur, err := os.ReadFile(filepath.Join(dir, "memory.memsw.limit_in_bytes"))
	if err == nil {
		if now, perr := strconv.ParseInt(string(bytes.TrimSpace(cur)), 10, 64); perr == nil && (*m.Limit > now || (m.Swap != nil && *m.Swap == -1)) {
			first, second = swap, limit
		}
	}
	if err := first(); err != nil {
		return fmt.Errorf("update memory of cgroup %s: %w", g.path, err)
	}
	if err := second(); err != nil {
		return fmt.Errorf("update memory of cgroup %s: %w", g.path, err)
	}
	return nil
}
