//go:build linux

package cgroup

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// BenchmarkGroupLifecycle is what a container's group costs the runtime:
// create /berth/<id> with a memory, CPU and PID limit and the device
// allow-list (on v2 that loads an eBPF program), move a process in, move
// it out again, remove the group. bench/parts/06-cgroups.sh runs it.
func BenchmarkGroupLifecycle(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("skipped: needs root (cgroups)")
	}
	mode, err := DetectMode()
	if err != nil {
		b.Skip(err)
	}
	sleeper := exec.Command("/bin/sleep", "1000")
	if err := sleeper.Start(); err != nil {
		b.Fatal(err)
	}
	// The process goes back to a group of its own, not to where it came
	// from: that is where v1 and v2 differ the most.
	home, err := Create(mode, fmt.Sprintf("/%s/bench-home-%d", Parent, os.Getpid()), nil)
	if err != nil {
		sleeper.Process.Kill()
		sleeper.Wait()
		b.Fatal(err)
	}
	defer func() {
		sleeper.Process.Kill()
		sleeper.Wait()
		if err := home.Delete(); err != nil {
			b.Error(err)
		}
	}()
	if err := home.Add(sleeper.Process.Pid); err != nil {
		b.Fatal(err)
	}
	mem, quota, period, pids := int64(64<<20), int64(100000), uint64(100000), int64(100)
	res := &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: &mem},
		CPU:     &specs.LinuxCPU{Quota: &quota, Period: &period},
		Devices: DefaultDevices(),
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g, err := Create(mode, fmt.Sprintf("/%s/bench-%d-%d", Parent, os.Getpid(), i), res)
		if err != nil {
			b.Fatal(err)
		}
		if err := g.SetPids(pids); err != nil {
			b.Fatal(err)
		}
		if err := g.Add(sleeper.Process.Pid); err != nil {
			b.Fatal(err)
		}
		if err := home.Add(sleeper.Process.Pid); err != nil {
			b.Fatal(err)
		}
		if err := g.Delete(); err != nil {
			b.Fatal(err)
		}
	}
}
