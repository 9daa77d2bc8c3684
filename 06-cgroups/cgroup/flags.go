//go:build linux

package cgroup

import (
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	units "github.com/docker/go-units"
	"golang.org/x/sys/unix"
)

// The flag types below parse values exactly as docker run does: sizes
// through go-units' RAMInBytes (Docker's own parser: "32m", "1g", "512k"
// are binary multiples), CPUs as a decimal, devices as PATH:RATE.

// bytesValue is a size in bytes; 0 means unset. allowUnlimited lets -1
// through (--memory-swap -1 means unlimited swap).
type bytesValue struct {
	n              int64
	allowUnlimited bool
}

func (b *bytesValue) Set(s string) error {
	if b.allowUnlimited && s == "-1" {
		b.n = -1
		return nil
	}
	n, err := units.RAMInBytes(s)
	if err != nil {
		return err
	}
	b.n = n
	return nil
}

func (b *bytesValue) String() string {
	if b.n == 0 {
		return ""
	}
	return strconv.FormatInt(b.n, 10)
}

func (b *bytesValue) Type() string { return "bytes" }

// cpusValue is --cpus as Docker's NanoCPUs: 1.5 is 1500000000.
type cpusValue struct {
	nano int64
	raw  string
}

func (c *cpusValue) Set(s string) error {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return fmt.Errorf("failed to parse %q as a rational number", s)
	}
	nano := r.Mul(r, big.NewRat(1e9, 1))
	if !nano.IsInt() {
		return fmt.Errorf("value is too precise")
	}
	c.nano, c.raw = nano.Num().Int64(), s
	return nil
}

func (c *cpusValue) String() string {
	if c.raw != "" || c.nano == 0 {
		return c.raw
	}
	return big.NewRat(c.nano, 1e9).FloatString(2)
}

func (c *cpusValue) Type() string { return "decimal" }

// A throttle is one --device-read-bps/--device-write-bps entry.
type throttle struct {
	Path         string
	Major, Minor int64
	Rate         uint64
}

type throttleList struct{ list []throttle }

// Set parses DEVICE:RATE. The device must be a whole block device: the
// kernel throttles disks, not partitions.
func (l *throttleList) Set(s string) error {
	i := strings.LastIndex(s, ":")
	if i <= 0 {
		return fmt.Errorf("bad format %q: use <device-path>:<rate>[<unit>], for example /dev/vda:1mb", s)
	}
	path, rateStr := s[:i], s[i+1:]
	if !strings.HasPrefix(path, "/dev/") {
		return fmt.Errorf("bad device %q: use a path under /dev, for example /dev/vda:1mb", path)
	}
	rate, err := units.RAMInBytes(rateStr)
	if err != nil || rate < 0 {
		return fmt.Errorf("invalid rate %q for device %s: use a positive number with an optional unit kb, mb or gb", rateStr, path)
	}
	major, minor, err := blockDevice(path)
	if err != nil {
		return err
	}
	l.list = append(l.list, throttle{Path: path, Major: major, Minor: minor, Rate: uint64(rate)})
	return nil
}

func (l *throttleList) String() string {
	var parts []string
	for _, t := range l.list {
		parts = append(parts, fmt.Sprintf("%s:%d", t.Path, t.Rate))
	}
	return strings.Join(parts, ",")
}

func (l *throttleList) Type() string { return "list" }

// blockDevice returns the numbers of a whole-disk block device.
func blockDevice(path string) (major, minor int64, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, 0, fmt.Errorf("device %s: %w", path, err)
	}
	if st.Mode()&os.ModeDevice == 0 || st.Mode()&os.ModeCharDevice != 0 {
		return 0, 0, fmt.Errorf("%s is not a block device", path)
	}
	major, minor = devNumbers(st)
	sys := fmt.Sprintf("/sys/dev/block/%d:%d", major, minor)
	if _, err := os.Stat(filepath.Join(sys, "partition")); err == nil {
		disk, _ := filepath.EvalSymlinks(filepath.Join(sys, ".."))
		return 0, 0, fmt.Errorf("%s is a partition: I/O limits apply to whole disks (use /dev/%s)", path, filepath.Base(disk))
	}
	return major, minor, nil
}

// confList is podman's --cgroup-conf KEY=VALUE, the OCI spec's
// linux.resources.unified map: any cgroup v2 file, written as is.
type confList struct{ m map[string]string }

func (l *confList) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("bad format %q: use FILE=VALUE, for example memory.high=64m", s)
	}
	ctrl, _, dotted := strings.Cut(k, ".")
	if !dotted || strings.ContainsAny(k, "/\x00") || k == "." || k == ".." {
		return fmt.Errorf("bad cgroup file %q: name a file of the container's group, as CONTROLLER.KNOB (memory.high, cpu.weight)", k)
	}
	if ctrl == "cgroup" {
		return fmt.Errorf("%s is the runtime's to manage (membership, controllers, freezing): it cannot be set with --cgroup-conf", k)
	}
	if l.m == nil {
		l.m = map[string]string{}
	}
	// Sizes read like the other flags: memory.high=64m.
	if strings.HasPrefix(k, "memory.") && v != "max" {
		if n, err := units.RAMInBytes(v); err == nil {
			v = strconv.FormatInt(n, 10)
		}
	}
	l.m[k] = v
	return nil
}

func (l *confList) String() string {
	keys := make([]string, 0, len(l.m))
	for k := range l.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+l.m[k])
	}
	return strings.Join(parts, ",")
}

func (l *confList) Type() string { return "list" }

// parseList parses a cpuset list ("0-2,4") into its members.
func parseList(s string) ([]int, error) {
	var out []int
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	for _, part := range strings.Split(strings.TrimSpace(s), ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("bad list %q: use numbers and ranges, for example 0-2,4", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("bad list %q: use numbers and ranges, for example 0-2,4", s)
			}
		}
		// The kernel's own bound (NR_CPUS is at most 8192): a list past
		// it names no machine, and expanding it would only eat memory.
		if b >= maxListID || len(out)+b-a >= maxListID {
			return nil, fmt.Errorf("bad list %q: ids go up to %d", s, maxListID-1)
		}
		for i := a; i <= b; i++ {
			out = append(out, i)
		}
	}
	return out, nil
}

const maxListID = 8192

// checkSubset refuses members of want that are not in have, as Docker
// says it: "Requested CPUs are not available - requested 4, available: 0-1".
func checkSubset(what, want, have string) error {
	w, err := parseList(want)
	if err != nil {
		return err
	}
	h, err := parseList(have)
	if err != nil {
		return fmt.Errorf("read available %s: %w", what, err)
	}
	ok := map[int]bool{}
	for _, i := range h {
		ok[i] = true
	}
	for _, i := range w {
		if !ok[i] {
			return fmt.Errorf("requested %s are not available - requested %s, available: %s", what, want, strings.TrimSpace(have))
		}
	}
	return nil
}

func devNumbers(st os.FileInfo) (major, minor int64) {
	rdev := uint64(st.Sys().(*syscall.Stat_t).Rdev)
	return int64(unix.Major(rdev)), int64(unix.Minor(rdev))
}
