//go:build linux

package cgroup

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

var (
	v1Host = host{Mode: Hybrid, NumCPU: 2, CPUs: "0-1", Mems: "0", SwapAccounting: true,
		Controllers: []string{"blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids"}}
	v2Host = host{Mode: V2, NumCPU: 2, CPUs: "0-1", Mems: "0", SwapAccounting: true,
		Controllers: []string{"cpuset", "cpu", "io", "memory", "pids"}}
)

// parse runs the flags through pflag as the command line would.
func parse(t *testing.T, args ...string) (*Options, error) {
	t.Helper()
	o := &Options{}
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	o.AddFlags(fs)
	return o, fs.Parse(args)
}

func TestResourcesRefusals(t *testing.T) {
	tests := []struct {
		name string
		host host
		args []string
		want string // in the error; "" means accepted
	}{
		{"memory bad unit", v1Host, []string{"--memory", "1x"}, "invalid suffix"},
		{"memory below 6MB", v1Host, []string{"-m", "4m"}, "minimum memory limit allowed is 6MB"},
		{"swap without memory", v1Host, []string{"--memory-swap", "64m"}, "--memory-swap needs --memory"},
		{"swap below memory", v1Host, []string{"-m", "64m", "--memory-swap", "32m"}, "at least --memory"},
		{"swap unlimited", v1Host, []string{"-m", "64m", "--memory-swap", "-1"}, ""},
		{"swap without accounting", host{Mode: V1, NumCPU: 2, CPUs: "0-1", Mems: "0", Controllers: v1Host.Controllers}, []string{"-m", "64m", "--memory-swap", "128m"}, "does not account swap"},
		{"reservation above memory", v1Host, []string{"-m", "32m", "--memory-reservation", "64m"}, "--memory-reservation must be below"},
		{"swappiness range", v1Host, []string{"--memory-swappiness", "101"}, "range is 0-100"},
		{"swappiness on v2", v2Host, []string{"--memory-swappiness", "10"}, "cgroup v1 setting"},
		{"oom-kill-disable on v2", v2Host, []string{"--oom-kill-disable"}, "cgroup v1 setting"},
		{"cgroup-conf on v1", v1Host, []string{"--cgroup-conf", "memory.high=64m"}, "writes cgroup v2 files"},
		{"cgroup-conf on v2", v2Host, []string{"--cgroup-conf", "memory.high=64m"}, ""},
		{"cgroup-conf bad file", v2Host, []string{"--cgroup-conf", "../memory.high=1"}, "bad cgroup file"},
		{"cgroup-conf cgroup.procs", v2Host, []string{"--cgroup-conf", "cgroup.procs=1"}, "runtime's to manage"},
		{"cgroup-conf unknown controller", v2Host, []string{"--cgroup-conf", "rdma.max=1"}, `no "rdma" controller`},
		{"kernel memory v1", v1Host, []string{"--kernel-memory", "64m"}, "--kernel-memory is not supported"},
		{"kernel memory v2", v2Host, []string{"--kernel-memory", "64m"}, "--kernel-memory is not supported"},
		{"cpus negative", v1Host, []string{"--cpus", "-1"}, "range of CPUs is from 0.01 to 2.00"},
		{"cpus too many", v2Host, []string{"--cpus", "3"}, "only 2 CPUs"},
		{"cpus too few", v2Host, []string{"--cpus", "0.001"}, "range of CPUs"},
		{"cpus not a number", v2Host, []string{"--cpus", "half"}, "rational number"},
		{"cpus and period", v1Host, []string{"--cpus", "1", "--cpu-period", "50000"}, "conflicting options"},
		{"cpus and quota", v1Host, []string{"--cpus", "1", "--cpu-quota", "50000"}, "conflicting options"},
		{"period range", v1Host, []string{"--cpu-period", "999"}, "--cpu-period can not be less than 1ms"},
		{"quota range", v1Host, []string{"--cpu-quota", "999"}, "--cpu-quota can not be less than 1ms"},
		{"quota unlimited", v1Host, []string{"--cpu-quota", "-1"}, ""},
		{"shares negative", v1Host, []string{"--cpu-shares", "-2"}, "invalid --cpu-shares"},
		{"cpuset absent", v1Host, []string{"--cpuset-cpus", "0-3"}, "requested CPUs are not available - requested 0-3, available: 0-1"},
		{"cpuset syntax", v1Host, []string{"--cpuset-cpus", "1-0"}, "bad list"},
		{"cpuset mems absent", v2Host, []string{"--cpuset-mems", "1"}, "requested memory nodes are not available"},
		{"blkio weight range", v1Host, []string{"--blkio-weight", "5"}, "range is 10-1000"},
		{"device not a block device", v1Host, []string{"--device-read-bps", "/dev/null:1mb"}, "not a block device"},
		{"device bad format", v1Host, []string{"--device-write-bps", "1mb"}, "bad format"},
		{"no pids controller", host{Mode: V2, NumCPU: 2, CPUs: "0-1", Mems: "0", Controllers: []string{"memory"}}, []string{"--pids-limit", "10"}, "need the pids controller"},
		{"all good", v2Host, []string{"-m", "64m", "--memory-reservation", "32m", "--cpus", "0.5", "--cpuset-cpus", "0", "--pids-limit", "20", "-c", "512"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parse(t, tt.args...)
			if err == nil {
				_, _, err = o.resources(tt.host)
			}
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("%v: unexpected error %v", tt.args, err)
			case tt.want != "" && err == nil:
				t.Fatalf("%v: accepted, want an error with %q", tt.args, tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("%v: error %q, want it to contain %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestResourcesValues(t *testing.T) {
	o, err := parse(t, "--memory", "32m", "--cpus", "0.5", "--cpu-shares", "512", "--pids-limit", "20", "--memory-reservation", "16m", "--cpuset-cpus", "0")
	if err != nil {
		t.Fatal(err)
	}
	res, _, err := o.resources(v1Host)
	if err != nil {
		t.Fatal(err)
	}
	if got := *res.Memory.Limit; got != 32<<20 {
		t.Errorf("memory limit %d, want %d", got, 32<<20)
	}
	if got := *res.Memory.Swap; got != 64<<20 {
		t.Errorf("default swap %d, want twice the memory (Docker's default)", got)
	}
	if got := *res.Memory.Reservation; got != 16<<20 {
		t.Errorf("reservation %d", got)
	}
	if *res.CPU.Quota != 50000 || *res.CPU.Period != 100000 {
		t.Errorf("--cpus 0.5 gave quota %d period %d, want 50000/100000", *res.CPU.Quota, *res.CPU.Period)
	}
	if *res.CPU.Shares != 512 || res.CPU.Cpus != "0" {
		t.Errorf("shares %d cpus %q", *res.CPU.Shares, res.CPU.Cpus)
	}
	if *res.Pids.Limit != 20 {
		t.Errorf("pids %d", *res.Pids.Limit)
	}
	if len(res.Devices) == 0 || res.Devices[0].Allow || res.Devices[0].Type != "a" {
		t.Errorf("device list must start with deny-all, got %+v", res.Devices)
	}

	// Unlimited values stay unset.
	o, _ = parse(t, "--pids-limit", "-1")
	res, _, _ = o.resources(v1Host)
	if res.Pids != nil || res.Memory != nil || res.CPU != nil {
		t.Errorf("--pids-limit -1 must set nothing: %+v", res)
	}
}

func TestV2Conversion(t *testing.T) {
	o, _ := parse(t, "--memory", "32m", "--cpus", "1.5", "--cpu-shares", "1024", "--memory-reservation", "8m")
	res, _, err := o.resources(v2Host)
	if err != nil {
		t.Fatal(err)
	}
	r := v2Resources(res)
	if got := string(r.CPU.Max); got != "150000 100000" {
		t.Errorf("cpu.max %q", got)
	}
	// runc's formula maps the default 1024 shares to the default weight 100.
	if got := *r.CPU.Weight; got != 100 {
		t.Errorf("cpu.weight for 1024 shares = %d, want 100", got)
	}
	if *r.Memory.Max != 32<<20 || *r.Memory.Low != 8<<20 {
		t.Errorf("memory.max %d memory.low %d", *r.Memory.Max, *r.Memory.Low)
	}
	o, _ = parse(t, "--cpu-period", "50000")
	res, _, _ = o.resources(v2Host)
	if got := string(v2Resources(res).CPU.Max); got != "max 50000" {
		t.Errorf("period alone: cpu.max %q, want \"max 50000\"", got)
	}
}

func TestParseList(t *testing.T) {
	got, err := parseList("0-2,5")
	if err != nil || len(got) != 4 || got[3] != 5 {
		t.Fatalf("parseList: %v %v", got, err)
	}
	for _, bad := range []string{"a", "2-1", "-1", "1,,2"} {
		if _, err := parseList(bad); err == nil {
			t.Errorf("parseList(%q) accepted", bad)
		}
	}
}
