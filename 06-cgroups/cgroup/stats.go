//go:build linux

package cgroup

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
	units "github.com/docker/go-units"
	"golang.org/x/sys/unix"
)

// A Sample is a group's counters at one moment, in one shape for both
// versions: what `docker stats` shows, plus the CFS throttling counters.
type Sample struct {
	ID         string    `json:"id"`
	Time       time.Time `json:"time"`
	CPUNanos   uint64    `json:"cpuNanos"`   // CPU time used, all CPUs (v1 cpuacct.usage, v2 cpu.stat usage_usec)
	CPUPercent float64   `json:"cpuPercent"` // over the last interval; 100 is one whole CPU
	Periods    uint64    `json:"periods"`    // CFS periods with a quota (nr_periods)
	Throttled  uint64    `json:"throttled"`  // periods in which the quota ran out (nr_throttled)
	MemUsage   uint64    `json:"memUsage"`   // bytes, page cache that can be dropped left out (as docker stats)
	MemLimit   uint64    `json:"memLimit"`   // bytes; 0: no limit
	MemPercent float64   `json:"memPercent"` // of the limit, or of the host's memory
	Pids       uint64    `json:"pids"`       // tasks: processes and threads
	PidsLimit  uint64    `json:"pidsLimit"`  // 0: no limit
	BlkRead    uint64    `json:"blkRead"`    // bytes read from block devices
	BlkWrite   uint64    `json:"blkWrite"`   // bytes written
	OOMKills   uint64    `json:"oomKills"`   // processes the OOM killer killed in the group
}

// Sample reads the group's counters now.
func (g *Group) Sample() (Sample, error) {
	s := Sample{Time: time.Now()}
	if g.v2 != nil {
		m, err := g.v2.Stat()
		if err != nil {
			return s, fmt.Errorf("stats of cgroup %s: %w", g.path, err)
		}
		if m.CPU != nil {
			s.CPUNanos = m.CPU.UsageUsec * 1000
			s.Periods, s.Throttled = m.CPU.NrPeriods, m.CPU.NrThrottled
		}
		if m.Memory != nil {
			s.MemUsage = sub(m.Memory.Usage, m.Memory.InactiveFile)
			s.MemLimit = unlimited(m.Memory.UsageLimit)
		}
		if m.MemoryEvents != nil {
			s.OOMKills = m.MemoryEvents.OomKill
		}
		if m.Pids != nil {
			s.Pids, s.PidsLimit = m.Pids.Current, unlimited(m.Pids.Limit)
		}
		if m.Io != nil {
			for _, e := range m.Io.Usage {
				s.BlkRead += e.Rbytes
				s.BlkWrite += e.Wbytes
			}
		}
	} else {
		m, err := g.v1.Stat(cgroup1.IgnoreNotExist)
		if err != nil {
			return s, fmt.Errorf("stats of cgroup %s: %w", g.path, err)
		}
		if m.CPU != nil {
			s.CPUNanos = m.CPU.Usage.Total
			s.Periods, s.Throttled = m.CPU.Throttling.Periods, m.CPU.Throttling.ThrottledPeriods
		}
		if m.Memory != nil && m.Memory.Usage != nil {
			s.MemUsage = sub(m.Memory.Usage.Usage, m.Memory.TotalInactiveFile)
			s.MemLimit = unlimited(m.Memory.Usage.Limit)
		}
		if m.MemoryOomControl != nil {
			s.OOMKills = m.MemoryOomControl.OomKill
		}
		if m.Pids != nil {
			s.Pids, s.PidsLimit = m.Pids.Current, m.Pids.Limit // the library reads "max" as 0
		}
		if m.Blkio != nil {
			for _, e := range m.Blkio.IoServiceBytesRecursive {
				switch e.Op {
				case "Read":
					s.BlkRead += e.Value
				case "Write":
					s.BlkWrite += e.Value
				}
			}
		}
	}
	limit := s.MemLimit
	if total := hostMemory(); limit == 0 || limit > total {
		limit = total
	}
	if limit > 0 {
		s.MemPercent = float64(s.MemUsage) / float64(limit) * 100
	}
	return s, nil
}

// Since fills in the CPU percentage from an earlier sample, as docker
// stats does: CPU time used over wall time passed.
func (s *Sample) Since(prev Sample) {
	wall := s.Time.Sub(prev.Time)
	if wall <= 0 || s.CPUNanos < prev.CPUNanos {
		return
	}
	s.CPUPercent = float64(s.CPUNanos-prev.CPUNanos) / float64(wall.Nanoseconds()) * 100
}

// A Table prints samples in docker stats' columns. The widths are fixed,
// so that rows printed one at a time (run --stats) line up.
type Table struct{ w io.Writer }

func NewTable(w io.Writer) *Table { return &Table{w: w} }

const rowFormat = "%-12s   %-7s   %-20s   %-7s   %-17s   %s\n"

// Header prints the column names; Row prints one sample.
func (t *Table) Header() {
	fmt.Fprintf(t.w, rowFormat, "CONTAINER ID", "CPU %", "MEM USAGE / LIMIT", "MEM %", "BLOCK I/O", "PIDS")
}

func (t *Table) Row(s Sample) {
	limit := s.MemLimit
	if limit == 0 {
		limit = hostMemory()
	}
	id := s.ID
	if len(id) > 12 {
		id = id[:12]
	}
	fmt.Fprintf(t.w, rowFormat, id,
		fmt.Sprintf("%.2f%%", s.CPUPercent),
		units.BytesSize(float64(s.MemUsage))+" / "+units.BytesSize(float64(limit)),
		fmt.Sprintf("%.2f%%", s.MemPercent),
		units.HumanSizeWithPrecision(float64(s.BlkRead), 3)+" / "+units.HumanSizeWithPrecision(float64(s.BlkWrite), 3),
		strconv.FormatUint(s.Pids, 10))
}

func hostMemory() uint64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}

func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}
