package userns

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A map is a list of lines "CONTAINER HOST SIZE": SIZE ids starting at
// CONTAINER inside the namespace are the ids starting at HOST outside it.
// The OCI spec's LinuxIDMapping is exactly one such line.

// maxLines is the kernel's limit on lines in one uid_map or gid_map
// (340 since Linux 4.15; 5 before).
const maxLines = 340

// ParseMapping reads "CONTAINER:HOST:SIZE", the form of --uidmap and
// --gidmap (and of podman's and runc's options of the same name).
func ParseMapping(s string) (specs.LinuxIDMapping, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return specs.LinuxIDMapping{}, fmt.Errorf("%q is not CONTAINER:HOST:SIZE (for example 0:100000:65536)", s)
	}
	var n [3]uint32
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return specs.LinuxIDMapping{}, fmt.Errorf("%q is not CONTAINER:HOST:SIZE: %q is not a number from 0 to %d", s, p, uint32(math.MaxUint32))
		}
		n[i] = uint32(v)
	}
	return specs.LinuxIDMapping{ContainerID: n[0], HostID: n[1], Size: n[2]}, nil
}

// FormatMapping is the inverse of ParseMapping.
func FormatMapping(m specs.LinuxIDMapping) string {
	return fmt.Sprintf("%d:%d:%d", m.ContainerID, m.HostID, m.Size)
}

// CheckMap applies the kernel's rules to a map before the kernel sees it,
// so that a bad map gets a sentence instead of "invalid argument": lines
// not empty, no range past the last id, no two lines overlapping on either
// side, at most 340 lines. kind is "uid" or "gid", for the message.
func CheckMap(kind string, m []specs.LinuxIDMapping) error {
	if len(m) == 0 {
		return fmt.Errorf("empty %s map", kind)
	}
	if len(m) > maxLines {
		return fmt.Errorf("%s map has %d lines: the kernel takes at most %d", kind, len(m), maxLines)
	}
	for _, l := range m {
		if l.Size == 0 {
			return fmt.Errorf("%s map %s: size 0 maps nothing", kind, FormatMapping(l))
		}
		// The last id, 4294967295, is (uid_t)-1, "no id": no range may reach it.
		if uint64(l.ContainerID)+uint64(l.Size) > math.MaxUint32 || uint64(l.HostID)+uint64(l.Size) > math.MaxUint32 {
			return fmt.Errorf("%s map %s: the range runs past the last id %d", kind, FormatMapping(l), uint32(math.MaxUint32-1))
		}
	}
	if a, b, ok := overlap(m, func(l specs.LinuxIDMapping) uint32 { return l.ContainerID }); ok {
		return fmt.Errorf("%s maps %s and %s overlap inside the container: each container id may be mapped once", kind, FormatMapping(a), FormatMapping(b))
	}
	if a, b, ok := overlap(m, func(l specs.LinuxIDMapping) uint32 { return l.HostID }); ok {
		return fmt.Errorf("%s maps %s and %s overlap on the host: each host id may be mapped once", kind, FormatMapping(a), FormatMapping(b))
	}
	return nil
}

// overlap finds two lines whose ranges on one side (start picks it) meet.
func overlap(m []specs.LinuxIDMapping, start func(specs.LinuxIDMapping) uint32) (a, b specs.LinuxIDMapping, found bool) {
	s := append([]specs.LinuxIDMapping(nil), m...)
	sort.Slice(s, func(i, j int) bool { return start(s[i]) < start(s[j]) })
	for i := 1; i < len(s); i++ {
		if uint64(start(s[i-1]))+uint64(s[i-1].Size) > uint64(start(s[i])) {
			return s[i-1], s[i], true
		}
	}
	return a, b, false
}

// ToHost translates a container id through the map, as the kernel does
// when the container's root creates a file: ok is false for an unmapped id.
func ToHost(m []specs.LinuxIDMapping, id uint32) (uint32, bool) {
	for _, l := range m {
		if id >= l.ContainerID && uint64(id) < uint64(l.ContainerID)+uint64(l.Size) {
			return l.HostID + (id - l.ContainerID), true
		}
	}
	return 0, false
}

// FromHost is ToHost the other way round: the id inside the namespace of
// a host id, if the map has it.
func FromHost(m []specs.LinuxIDMapping, id uint32) (uint32, bool) {
	for _, l := range m {
		if id >= l.HostID && uint64(id) < uint64(l.HostID)+uint64(l.Size) {
			return l.ContainerID + (id - l.HostID), true
		}
	}
	return 0, false
}

// Size is the number of ids a map gives the container.
func Size(m []specs.LinuxIDMapping) uint64 {
	var n uint64
	for _, l := range m {
		n += uint64(l.Size)
	}
	return n
}

// mapFile is the text written to /proc/PID/uid_map: one line per range.
func mapFile(m []specs.LinuxIDMapping) string {
	var b strings.Builder
	for _, l := range m {
		fmt.Fprintf(&b, "%d %d %d\n", l.ContainerID, l.HostID, l.Size)
	}
	return b.String()
}

// helperArgs are the same lines as arguments of newuidmap/newgidmap.
func helperArgs(pid int, m []specs.LinuxIDMapping) []string {
	args := []string{strconv.Itoa(pid)}
	for _, l := range m {
		args = append(args, strconv.FormatUint(uint64(l.ContainerID), 10), strconv.FormatUint(uint64(l.HostID), 10), strconv.FormatUint(uint64(l.Size), 10))
	}
	return args
}

// A SubRange is one line of /etc/subuid or /etc/subgid: COUNT ids from
// START that belong to a user, to be used in that user's namespaces.
type SubRange struct {
	Start, Count uint32
}

// ErrNoSubIDs says a user has no line in /etc/subuid or /etc/subgid.
var ErrNoSubIDs = errors.New("no subordinate ids")

// ReadSubIDs returns the ranges that file (/etc/subuid or /etc/subgid)
// gives to the user, named by login name or by number, in file order, as
// shadow's newuidmap reads them.
func ReadSubIDs(file, name string, id uint32) ([]SubRange, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("read subordinate ids: %w", err)
	}
	defer f.Close()
	return parseSubIDs(f, name, id)
}

func parseSubIDs(r io.Reader, name string, id uint32) ([]SubRange, error) {
	var out []SubRange
	num := strconv.FormatUint(uint64(id), 10)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 3 || (f[0] != name && f[0] != num) {
			continue
		}
		start, err1 := strconv.ParseUint(f[1], 10, 32)
		count, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil || count == 0 {
			continue // shadow skips malformed lines too
		}
		out = append(out, SubRange{Start: uint32(start), Count: uint32(count)})
	}
	return out, sc.Err()
}

// RangeMap is the map of --map-subids: container ids 0–65535 on the user's
// subordinate range, id for id (container 1000 is the range's start+1000),
// except container 0, which is the user's own id. The user's own id must be
// container root: berth's init runs as that user, and only a process that
// is root in the namespace regains its capabilities when it executes
// itself again (see the spine's reexecAsRoot). So the range's first id
// stays unused, and 65536 ids are mapped in all. Several ranges are joined,
// in file order, as if they were one.
func RangeMap(own uint32, ranges []SubRange) []specs.LinuxIDMapping {
	const end = 65536 // container ids 0..65535
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: own, Size: 1}}
	pos := uint32(0) // position of the range's first id in the joined ranges
	for _, r := range ranges {
		lo, hi := max(pos, 1), min(pos+r.Count, end) // container ids this range serves
		if lo < hi {
			m = append(m, specs.LinuxIDMapping{ContainerID: lo, HostID: r.Start + (lo - pos), Size: hi - lo})
		}
		pos += r.Count
		if pos >= end {
			break
		}
	}
	return m
}

// KeepIDMap is the map of --userns=keep-id (podman's): the user's own id
// is the same id inside, and every other container id from 0 to 65535
// (and up to the user's own, when it is higher) comes from the subordinate
// ranges, in file order, as if they were one. Where the ranges run out,
// the ids left are not mapped.
func KeepIDMap(own uint32, ranges []SubRange) []specs.LinuxIDMapping {
	end := max(uint32(65536), own+1) // container ids 0..end-1
	var m []specs.LinuxIDMapping
	next, placed := uint32(0), false // the next container id to map; own mapped yet
	for _, r := range ranges {
		host, count := r.Start, r.Count
		for count > 0 && next < end {
			if next == own {
				m = append(m, specs.LinuxIDMapping{ContainerID: own, HostID: own, Size: 1})
				next, placed = next+1, true
				continue
			}
			stop := end
			if next < own {
				stop = own
			}
			n := min(count, stop-next)
			m = append(m, specs.LinuxIDMapping{ContainerID: next, HostID: host, Size: n})
			next, host, count = next+n, host+n, count-n
		}
	}
	if !placed {
		m = append(m, specs.LinuxIDMapping{ContainerID: own, HostID: own, Size: 1})
	}
	return m
}
