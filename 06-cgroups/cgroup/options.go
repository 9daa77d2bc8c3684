//go:build linux

package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/pflag"

	"berth/01-uts/spine"
	"berth/02-pid/pid"
)

// Options are docker run's resource flags, with Docker's names and
// meanings, plus --stats (print usage while the container runs) and
// podman's --cgroup-conf (any cgroup v2 file).
type Options struct {
	Memory            bytesValue
	MemorySwap        bytesValue
	MemoryReservation bytesValue
	MemorySwappiness  int64
	OOMKillDisable    bool
	KernelMemory      bytesValue
	CPUShares         int64
	CPUs              cpusValue
	CPUPeriod         int64
	CPUQuota          int64
	CpusetCpus        string
	CpusetMems        string
	PidsLimit         int64
	BlkioWeight       uint16
	DeviceReadBps     throttleList
	DeviceWriteBps    throttleList
	CgroupConf        confList
	Stats             bool
}

func (o *Options) AddFlags(fs *pflag.FlagSet) {
	o.MemorySwap.allowUnlimited = true
	fs.VarP(&o.Memory, "memory", "m", "memory limit (e.g. 32m, 1g)")
	fs.Var(&o.MemorySwap, "memory-swap", "memory plus swap limit; -1 for unlimited swap (default: twice --memory)")
	fs.Var(&o.MemoryReservation, "memory-reservation", "soft memory limit, reclaimed first under pressure")
	fs.Int64Var(&o.MemorySwappiness, "memory-swappiness", -1, "swappiness 0-100 (cgroup v1 only)")
	fs.BoolVar(&o.OOMKillDisable, "oom-kill-disable", false, "do not OOM-kill at the limit; processes wait instead (cgroup v1 only)")
	fs.Var(&o.KernelMemory, "kernel-memory", "kernel memory limit (refused: gone from cgroup v2 and ignored by Linux since 5.16)")
	fs.Int64VarP(&o.CPUShares, "cpu-shares", "c", 0, "relative CPU weight (default 1024; cpu.weight on v2)")
	fs.Var(&o.CPUs, "cpus", "number of CPUs, e.g. 0.5 (a CFS quota per 100ms period)")
	fs.Int64Var(&o.CPUPeriod, "cpu-period", 0, "CFS period in microseconds (1000-1000000)")
	fs.Int64Var(&o.CPUQuota, "cpu-quota", 0, "CFS quota in microseconds per period; -1 for none")
	fs.StringVar(&o.CpusetCpus, "cpuset-cpus", "", "CPUs the container may run on (0-3, 0,1)")
	fs.StringVar(&o.CpusetMems, "cpuset-mems", "", "memory nodes the container may allocate from (0-3, 0,1)")
	fs.Int64Var(&o.PidsLimit, "pids-limit", 0, "maximum number of tasks (processes and threads); 0 or -1 for unlimited")
	fs.Uint16Var(&o.BlkioWeight, "blkio-weight", 0, "relative block I/O weight, 10-1000 (needs the BFQ scheduler)")
	fs.Var(&o.DeviceReadBps, "device-read-bps", "limit reads from a disk, DEVICE:RATE (e.g. /dev/vda:1mb)")
	fs.Var(&o.DeviceWriteBps, "device-write-bps", "limit writes to a disk, DEVICE:RATE (e.g. /dev/vda:1mb)")
	fs.Var(&o.CgroupConf, "cgroup-conf", "write a cgroup v2 file of the container's group, FILE=VALUE (e.g. memory.high=64m; cgroup v2 only)")
	fs.BoolVar(&o.Stats, "stats", false, "print the container's CPU, memory, PIDs and block I/O every second, and at the end")
}

// Configure checks the flags against Docker's rules and this host, and
// turns them into the OCI spec's linux.resources. Every refusal happens
// here, before any group exists.
func (o *Options) Configure(c *spine.Container) ([]spine.Step, error) {
	c.AddNamespace(specs.CgroupNamespace, "")
	if os.Geteuid() != 0 {
		// Without root there is no group to create (cgroup delegation is
		// systemd's business); the namespace alone still hides the host's
		// paths.
		if o.anySet() {
			return nil, errors.New("resource limits need root: the cgroup tree belongs to root (run with sudo)")
		}
		return nil, nil
	}
	mode, err := DetectMode()
	if err != nil {
		return nil, err
	}
	res, warnings, err := o.resources(probeHost(mode))
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		fmt.Fprintf(os.Stderr, "%s: WARNING: %s\n", c.Prog, w)
	}
	if err := checkInitRoom(c, o.PidsLimit); err != nil {
		return nil, err
	}
	c.Spec.Linux.Resources = res
	c.Spec.Linux.CgroupsPath = GroupPath(c.ID)
	return []spine.Step{&Step{Stats: o.Stats}}, nil
}

// initThreads is what berth's --init, a Go program run with GOMAXPROCS=1,
// keeps in the group: 7 threads measured, and a spare. pids.max counts
// threads, so with --init a limit must leave the command room beyond them
// (docker's tini, single-threaded C, takes one).
const initThreads = 8

// checkInitRoom refuses, before anything exists, a --pids-limit that the
// Go init of --init (stage 02's step, earlier in the list) would use up.
func checkInitRoom(c *spine.Container, limit int64) error {
	if limit <= 0 {
		return nil
	}
	for _, st := range c.Steps {
		if p, ok := st.(*pid.Step); ok && p.Init && limit <= initThreads {
			return fmt.Errorf("--pids-limit %d is too small with --init: berth's init is a Go program whose threads (about %d) count against pids.max; use more than %d, or run without --init", limit, initThreads, initThreads)
		}
	}
	return nil
}

func (o *Options) anySet() bool {
	return o.Memory.n != 0 || o.MemorySwap.n != 0 || o.MemoryReservation.n != 0 || o.MemorySwappiness != -1 ||
		o.OOMKillDisable || o.KernelMemory.n != 0 || o.CPUShares != 0 || o.CPUs.nano != 0 || o.CPUPeriod != 0 ||
		o.CPUQuota != 0 || o.CpusetCpus != "" || o.CpusetMems != "" || o.PidsLimit > 0 || o.BlkioWeight != 0 ||
		len(o.DeviceReadBps.list) > 0 || len(o.DeviceWriteBps.list) > 0 || len(o.CgroupConf.m) > 0 || o.Stats
}

// host is what the checks need to know about the machine.
type host struct {
	Mode           Mode
	NumCPU         int
	CPUs, Mems     string   // online CPUs and memory nodes, as lists
	SwapAccounting bool     // memory+swap can be limited
	Controllers    []string // controllers offered: v1 hierarchies mounted, or the v2 root's
}

func probeHost(mode Mode) host {
	h := host{Mode: mode, NumCPU: runtime.NumCPU(), Controllers: V1Controllers()}
	if mode.Unified() {
		h.Controllers = V2Controllers()
		h.CPUs = readFirst("0", filepath.Join(Root, "cpuset.cpus.effective"), "/sys/devices/system/cpu/online")
		h.Mems = readFirst("0", filepath.Join(Root, "cpuset.mems.effective"), "/sys/devices/system/node/online")
		h.SwapAccounting = true // missing memory.swap.max is noticed when the group exists
		return h
	}
	h.CPUs = readFirst("0", filepath.Join(Root, "cpuset", "cpuset.effective_cpus"), "/sys/devices/system/cpu/online")
	h.Mems = readFirst("0", filepath.Join(Root, "cpuset", "cpuset.effective_mems"), "/sys/devices/system/node/online")
	h.SwapAccounting = fileExists(filepath.Join(Root, "memory", "memory.memsw.limit_in_bytes"))
	return h
}

// Docker's limits (daemon/daemon_unix.go verifyPlatformContainerResources).
const (
	minMemory     = 6 * 1024 * 1024
	defaultPeriod = 100000 // µs: the kernel's default CFS period, Docker's for --cpus
)

// resources validates the flags against h and builds the OCI resources.
// It is pure, so the rules are unit-tested without a cgroup in sight.
func (o *Options) resources(h host) (*specs.LinuxResources, []string, error) {
	var warnings []string
	v1only := func(flag, why string) error {
		return fmt.Errorf("%s is a cgroup v1 setting and this host runs cgroup v2 (%s)", flag, why)
	}
	if o.KernelMemory.n != 0 {
		return nil, nil, errors.New("--kernel-memory is not supported: cgroup v2 has no kernel-memory limit, and since Linux 5.16 a v1 memory.kmem.limit_in_bytes is refused or ignored; kernel memory is charged to --memory")
	}
	if h.Mode.Unified() {
		if o.MemorySwappiness != -1 {
			return nil, nil, v1only("--memory-swappiness", "v2 has no per-group swappiness")
		}
		if o.OOMKillDisable {
			return nil, nil, v1only("--oom-kill-disable", "v2 always OOM-kills at memory.max; memory.high throttles instead, see --cgroup-conf")
		}
	} else if len(o.CgroupConf.m) > 0 {
		return nil, nil, fmt.Errorf("--cgroup-conf writes cgroup v2 files and this host runs cgroup %s: use the docker flags (--memory, --cpus...)", h.Mode)
	}

	res := &specs.LinuxResources{Devices: DefaultDevices()}

	// Memory.
	mem, swap, resv := o.Memory.n, o.MemorySwap.n, o.MemoryReservation.n
	if mem != 0 && mem < minMemory {
		return nil, nil, errors.New("minimum memory limit allowed is 6MB (--memory)")
	}
	if swap != 0 && mem == 0 {
		return nil, nil, errors.New("--memory-swap needs --memory: it is the total of memory and swap")
	}
	if swap > 0 && swap < mem {
		return nil, nil, errors.New("--memory-swap must be at least --memory: it is the total of memory and swap")
	}
	if swap != 0 && !h.SwapAccounting {
		return nil, nil, errors.New("--memory-swap: this kernel does not account swap (no memory.memsw.limit_in_bytes; boot with swapaccount=1)")
	}
	if resv < 0 || (mem > 0 && resv > mem) {
		return nil, nil, errors.New("--memory-reservation must be below --memory: it is the soft limit under the hard one")
	}
	if o.MemorySwappiness < -1 || o.MemorySwappiness > 100 {
		return nil, nil, fmt.Errorf("invalid --memory-swappiness %d: the range is 0-100", o.MemorySwappiness)
	}
	if mem != 0 || resv != 0 || o.MemorySwappiness != -1 || o.OOMKillDisable {
		m := &specs.LinuxMemory{}
		if mem != 0 {
			m.Limit = &mem
			if swap == 0 && h.SwapAccounting {
				// Docker's default: as much swap as memory.
				s := 2 * mem
				m.Swap = &s
			}
		}
		if swap != 0 {
			m.Swap = &swap
		}
		if resv != 0 {
			m.Reservation = &resv
		}
		if o.MemorySwappiness != -1 {
			s := uint64(o.MemorySwappiness)
			m.Swappiness = &s
		}
		if o.OOMKillDisable {
			t := true
			m.DisableOOMKiller = &t
			if mem == 0 {
				warnings = append(warnings, "disabling the OOM killer without a --memory limit may let the container exhaust the host's memory")
			}
		}
		res.Memory = m
	}

	// CPU.
	if o.CPUShares < 0 {
		return nil, nil, fmt.Errorf("invalid --cpu-shares %d: use 2-262144 (1024 is the default weight)", o.CPUShares)
	}
	if o.CPUs.nano != 0 && o.CPUPeriod != 0 {
		return nil, nil, errors.New("conflicting options: --cpus and --cpu-period cannot both be set")
	}
	if o.CPUs.nano != 0 && o.CPUQuota != 0 {
		return nil, nil, errors.New("conflicting options: --cpus and --cpu-quota cannot both be set")
	}
	if o.CPUs.nano < 0 || o.CPUs.nano > int64(h.NumCPU)*1e9 || (o.CPUs.nano > 0 && o.CPUs.nano < 1e7) {
		return nil, nil, fmt.Errorf("invalid --cpus %s: the range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", o.CPUs.String(), h.NumCPU, h.NumCPU)
	}
	if o.CPUPeriod != 0 && (o.CPUPeriod < 1000 || o.CPUPeriod > 1000000) {
		return nil, nil, errors.New("--cpu-period can not be less than 1ms (i.e. 1000) or larger than 1 second (i.e. 1000000)")
	}
	if o.CPUQuota < -1 || (o.CPUQuota > 0 && o.CPUQuota < 1000) {
		return nil, nil, errors.New("--cpu-quota can not be less than 1ms (i.e. 1000); -1 means no quota")
	}
	if o.CpusetCpus != "" {
		if err := checkSubset("CPUs", o.CpusetCpus, h.CPUs); err != nil {
			return nil, nil, fmt.Errorf("--cpuset-cpus: %w", err)
		}
	}
	if o.CpusetMems != "" {
		if err := checkSubset("memory nodes", o.CpusetMems, h.Mems); err != nil {
			return nil, nil, fmt.Errorf("--cpuset-mems: %w", err)
		}
	}
	if o.CPUShares != 0 || o.CPUs.nano != 0 || o.CPUPeriod != 0 || o.CPUQuota != 0 || o.CpusetCpus != "" || o.CpusetMems != "" {
		cpu := &specs.LinuxCPU{Cpus: o.CpusetCpus, Mems: o.CpusetMems}
		if o.CPUShares != 0 {
			s := uint64(o.CPUShares)
			cpu.Shares = &s
		}
		if o.CPUs.nano != 0 {
			p := uint64(defaultPeriod)
			q := o.CPUs.nano * defaultPeriod / 1e9
			cpu.Period, cpu.Quota = &p, &q
		}
		if o.CPUPeriod != 0 {
			p := uint64(o.CPUPeriod)
			cpu.Period = &p
		}
		if o.CPUQuota != 0 {
			q := o.CPUQuota
			cpu.Quota = &q
		}
		res.CPU = cpu
	}

	// PIDs: 0 and -1 both mean unlimited, as in Docker.
	if o.PidsLimit > 0 {
		l := o.PidsLimit
		res.Pids = &specs.LinuxPids{Limit: &l}
	}

	// Block I/O.
	if o.BlkioWeight != 0 && (o.BlkioWeight < 10 || o.BlkioWeight > 1000) {
		return nil, nil, fmt.Errorf("invalid --blkio-weight %d: the range is 10-1000", o.BlkioWeight)
	}
	if o.BlkioWeight != 0 || len(o.DeviceReadBps.list) > 0 || len(o.DeviceWriteBps.list) > 0 {
		b := &specs.LinuxBlockIO{}
		if o.BlkioWeight != 0 {
			w := o.BlkioWeight
			b.Weight = &w
		}
		for _, t := range o.DeviceReadBps.list {
			b.ThrottleReadBpsDevice = append(b.ThrottleReadBpsDevice, specs.LinuxThrottleDevice{Rate: t.Rate, LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: t.Major, Minor: t.Minor}})
		}
		for _, t := range o.DeviceWriteBps.list {
			b.ThrottleWriteBpsDevice = append(b.ThrottleWriteBpsDevice, specs.LinuxThrottleDevice{Rate: t.Rate, LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: t.Major, Minor: t.Minor}})
		}
		res.BlockIO = b
	}

	// Raw v2 files.
	for k := range o.CgroupConf.m {
		ctrl, _, _ := strings.Cut(k, ".")
		if !contains(h.Controllers, ctrl) {
			return nil, nil, fmt.Errorf("--cgroup-conf %s: no %q controller on this host (it offers: %s)", k, ctrl, strings.Join(h.Controllers, " "))
		}
	}
	if len(o.CgroupConf.m) > 0 {
		res.Unified = o.CgroupConf.m
	}
	if err := checkControllers(h, res); err != nil {
		return nil, nil, err
	}
	return res, warnings, nil
}

// checkControllers refuses a limit whose controller the host lacks,
// rather than failing halfway through creating the group.
func checkControllers(h host, res *specs.LinuxResources) error {
	need := func(ctrl, flags string) error {
		if contains(h.Controllers, ctrl) {
			return nil
		}
		where := "no " + filepath.Join(Root, ctrl) + " hierarchy is mounted"
		if h.Mode.Unified() {
			where = "the v2 root's cgroup.controllers does not list it"
		}
		return fmt.Errorf("%s need the %s controller, and %s", flags, ctrl, where)
	}
	io := "blkio"
	if h.Mode.Unified() {
		io = "io"
	}
	checks := []struct {
		set         bool
		ctrl, flags string
	}{
		{res.Memory != nil, "memory", "--memory and its kin"},
		{res.CPU != nil && (res.CPU.Shares != nil || res.CPU.Quota != nil || res.CPU.Period != nil), "cpu", "--cpus, --cpu-shares, --cpu-period and --cpu-quota"},
		{res.CPU != nil && (res.CPU.Cpus != "" || res.CPU.Mems != ""), "cpuset", "--cpuset-cpus and --cpuset-mems"},
		{res.Pids != nil, "pids", "--pids-limit"},
		{res.BlockIO != nil, io, "--blkio-weight and --device-*-bps"},
		{!h.Mode.Unified(), "devices", "containers"},
	}
	for _, c := range checks {
		if c.set {
			if err := need(c.ctrl, c.flags); err != nil {
				return err
			}
		}
	}
	return nil
}

// DefaultDevices is the allow-list Docker and runc give every container:
// deny everything, then allow mknod of any node (opening is what counts)
// and the harmless character devices a program expects to find.
func DefaultDevices() []specs.LinuxDeviceCgroup {
	// Wildcards are spelled out (type "a", numbers -1): the v2 eBPF
	// generator of the library needs them explicit.
	dev := func(allow bool, typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: allow, Type: typ, Major: &major, Minor: &minor, Access: access}
	}
	return []specs.LinuxDeviceCgroup{
		dev(false, "a", -1, -1, "rwm"), // deny all
		dev(true, "c", -1, -1, "m"),    // mknod any char device...
		dev(true, "b", -1, -1, "m"),    // ...and block device; opening them is denied
		dev(true, "c", 1, 3, "rwm"),    // /dev/null
		dev(true, "c", 1, 5, "rwm"),    // /dev/zero
		dev(true, "c", 1, 7, "rwm"),    // /dev/full
		dev(true, "c", 1, 8, "rwm"),    // /dev/random
		dev(true, "c", 1, 9, "rwm"),    // /dev/urandom
		dev(true, "c", 5, 0, "rwm"),    // /dev/tty
		dev(true, "c", 5, 1, "rwm"),    // /dev/console
		dev(true, "c", 5, 2, "rwm"),    // /dev/ptmx
		dev(true, "c", 136, -1, "rwm"), // /dev/pts/*
	}
}

func readFirst(def string, paths ...string) string {
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) != "" {
			return strings.TrimSpace(string(b))
		}
	}
	return def
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
