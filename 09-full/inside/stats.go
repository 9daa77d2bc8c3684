//go:build linux

package inside

import (
	"berth/01-uts/spine"
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"berth/06-cgroups/cgroup"
	"berth/09-full/engine"
	"berth/09-full/store"

	"berth/09-full/clikit"
)

// statsCommand is `berth stats [--no-stream] [--format] [CONTAINER...]`:
// stage 06's cgroup counters (v1 or v2), the network counters of the
// container's own namespace, in docker stats' columns; live, refreshed
// every second on a terminal, until Ctrl-C.
func (a *app) statsCommand() *cobra.Command {
	var noStream, all bool
	var format string
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.Engine()
			if err != nil {
				return err
			}
			if format == "" {
				format = statsTable
			}
			if _, _, err := clikit.ParseFormat(format); err != nil {
				return clikit.Usage("%v", err)
			}
			live := !noStream && term.IsTerminal(int(os.Stdout.Fd()))
			if !noStream && !live {
				noStream = true // not a terminal: one sample, as piping docker stats would want
			}
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, unix.SIGINT, unix.SIGTERM)
			defer signal.Stop(sigs)
			prev := map[string]cgroup.Sample{}
			for first := true; ; first = false {
				rows, err := a.statsRows(e, args, all, prev)
				if err != nil {
					return err
				}
				if first {
					// CPU % needs two samples: wait a moment for the second.
					select {
					case <-time.After(500 * time.Millisecond):
					case <-sigs:
						return nil
					}
					if rows, err = a.statsRows(e, args, all, prev); err != nil {
						return err
					}
				}
				var b bytes.Buffer
				if err := clikit.Render(&b, format, statsHeader{}, rows); err != nil {
					return err
				}
				if live {
					fmt.Fprint(a.Stdout, "\033[2J\033[H") // clear the screen, as docker stats
				}
				if _, err := a.Stdout.Write(b.Bytes()); err != nil {
					return err
				}
				if noStream {
					return nil
				}
				select {
				case <-time.After(time.Second):
				case <-sigs:
					return nil
				}
			}
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&noStream, "no-stream", false, "disable streaming stats and only pull the first result")
	fs.BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	fs.StringVar(&format, "format", "", "format output using a Go template, or 'table TEMPLATE'")
	return cmd
}

const statsTable = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

// statsRows samples each container named (or every running one, or with
// all every one); prev keeps the last sample per id, for CPU %.
func (a *app) statsRows(e *engine.Engine, refs []string, all bool, prev map[string]cgroup.Sample) ([]any, error) {
	var recs []*store.Record
	if len(refs) == 0 {
		list, err := e.Store.List()
		if err != nil {
			return nil, err
		}
		recs = list
	} else {
		for _, ref := range refs {
			rec, err := e.Store.Get(ref)
			if err != nil {
				return nil, err
			}
			recs = append(recs, rec)
		}
	}
	var rows []any
	for _, rec := range recs {
		st, err := e.Store.View(rec.ID)
		if err != nil {
			continue
		}
		r := &statsRow{id: rec.ID, name: rec.Name}
		if !st.Running() {
			if len(refs) == 0 && !all {
				continue
			}
			rows = append(rows, r)
			continue
		}
		if noCgroup(rec) {
			return nil, rootlessRefusal("stats", rec, "no counters to read")
		}
		s, err := containerSample(rec)
		if err != nil {
			return nil, fmt.Errorf("stats of %s: %w", rec.Name, err)
		}
		if p, ok := prev[rec.ID]; ok {
			s.Since(p)
		}
		prev[rec.ID] = s
		r.s, r.ok = s, true
		r.rx, r.tx = netIO(st.Pid)
		rows = append(rows, r)
	}
	return rows, nil
}

// containerSample reads the counters of the container's cgroup.
func containerSample(rec *store.Record) (cgroup.Sample, error) {
	if noCgroup(rec) {
		return cgroup.Sample{}, rootlessRefusal("stats", rec, "no counters to read")
	}
	mode, err := cgroup.DetectMode()
	if err != nil {
		return cgroup.Sample{}, err
	}
	g, err := cgroup.Load(mode, rec.Spec.Linux.CgroupsPath)
	if err != nil {
		return cgroup.Sample{}, err
	}
	s, err := g.Sample()
	if err != nil {
		return s, err
	}
	limit := s.MemLimit
	if limit == 0 {
		limit = hostMemory()
	}
	if limit > 0 {
		s.MemPercent = float64(s.MemUsage) / float64(limit) * 100
	}
	s.MemLimit = limit
	return s, nil
}

// netIO sums the bytes received and sent by the interfaces of the
// container's network namespace (/proc/PID/net/dev as the init sees it),
// loopback left out, as docker stats.
func netIO(pid int) (rx, tx uint64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) < 9 {
			continue
		}
		r, _ := strconv.ParseUint(fields[0], 10, 64)
		t, _ := strconv.ParseUint(fields[8], 10, 64)
		rx, tx = rx+r, tx+t
	}
	return rx, tx
}

func hostMemory() uint64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}

// statsRow is one container's line; its methods are --format's fields.
type statsRow struct {
	id, name string
	s        cgroup.Sample
	ok       bool // running: s is a sample
	rx, tx   uint64
}

func (r *statsRow) ID() string        { return r.id[:12] }
func (r *statsRow) Container() string { return r.id[:12] }
func (r *statsRow) Name() string      { return r.name }
func (r *statsRow) CPUPerc() string   { return r.value(fmt.Sprintf("%.2f%%", r.s.CPUPercent)) }
func (r *statsRow) MemPerc() string   { return r.value(fmt.Sprintf("%.2f%%", r.s.MemPercent)) }
func (r *statsRow) MemUsage() string {
	return r.value(units.BytesSize(float64(r.s.MemUsage)) + " / " + units.BytesSize(float64(r.s.MemLimit)))
}
func (r *statsRow) NetIO() string {
	return r.value(units.HumanSizeWithPrecision(float64(r.rx), 3) + " / " + units.HumanSizeWithPrecision(float64(r.tx), 3))
}
func (r *statsRow) BlockIO() string {
	return r.value(units.HumanSizeWithPrecision(float64(r.s.BlkRead), 3) + " / " + units.HumanSizeWithPrecision(float64(r.s.BlkWrite), 3))
}
func (r *statsRow) PIDs() string { return r.value(strconv.FormatUint(r.s.Pids, 10)) }

// value is v, or Docker's "--" for a container that is not running.
func (r *statsRow) value(v string) string {
	if !r.ok {
		return "--"
	}
	return v
}

type statsHeader struct{}

func (statsHeader) ID() string        { return "CONTAINER ID" }
func (statsHeader) Container() string { return "CONTAINER" }
func (statsHeader) Name() string      { return "NAME" }
func (statsHeader) CPUPerc() string   { return "CPU %" }
func (statsHeader) MemUsage() string  { return "MEM USAGE / LIMIT" }
func (statsHeader) MemPerc() string   { return "MEM %" }
func (statsHeader) NetIO() string     { return "NET I/O" }
func (statsHeader) BlockIO() string   { return "BLOCK I/O" }
func (statsHeader) PIDs() string      { return "PIDS" }

// noCgroup: a rootless container has no cgroup of its own. Stage 06 makes
// groups as root; an ordinary user could only make them in a cgroup v2
// subtree delegated to them (systemd's user@UID.service, Delegate=yes),
// which berth does not use: neither the host (cgroup v1) nor the VM
// (cgroup v2, no systemd) gives a user one to try it on.
func noCgroup(rec *store.Record) bool {
	return rec.Spec.Linux == nil || rec.Spec.Linux.CgroupsPath == "" || os.Geteuid() != 0
}

// rootlessRefusal is podman's answer in rootless mode without cgroups:
// one line, exit 125.
func rootlessRefusal(verb string, rec *store.Record, what string) error {
	return spine.Exitf(spine.ExitRuntime, "%s is not supported in rootless mode: container %s has no cgroup of its own (berth uses no delegated cgroup v2 subtree), %s", verb, rec.Name, what)
}
