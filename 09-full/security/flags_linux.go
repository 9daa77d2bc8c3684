//go:build linux

package security

import (
	"github.com/spf13/pflag"

	"berth/01-uts/spine"
)

// Flags is the spine option of docker run's security flags: it registers
// them under Docker's names and, once parsed, applies Docker's defaults
// and the flags to the spec (Apply) and adds the Step. --init is left to
// the caller (stage 02 already has one; set Options.Init).
type Flags struct {
	Options
	oomScoreAdj int
	fs          *pflag.FlagSet
}

func (f *Flags) AddFlags(fs *pflag.FlagSet) {
	f.fs = fs
	fs.StringArrayVar(&f.CapAdd, "cap-add", nil, "add a Linux capability (NET_ADMIN, CAP_SYS_TIME, ALL...)")
	fs.StringArrayVar(&f.CapDrop, "cap-drop", nil, "drop a Linux capability (ALL drops every one)")
	fs.BoolVar(&f.Privileged, "privileged", false, "give the container every capability, every device, no seccomp filter and no masked paths")
	fs.StringArrayVar(&f.SecurityOpt, "security-opt", nil, "seccomp=PROFILE.json|unconfined, no-new-privileges[=true|false], systempaths=unconfined (apparmor=, label=: nothing without AppArmor, SELinux)")
	fs.StringArrayVar(&f.Devices, "device", nil, "add a host device: HOST[:CONTAINER[:PERMS]], PERMS of r, w, m")
	fs.StringArrayVar(&f.DeviceRules, "device-cgroup-rule", nil, "add a rule to the device cgroup: 'TYPE MAJOR:MINOR ACCESS' ('c 10:200 rwm')")
	fs.StringArrayVar(&f.Ulimits, "ulimit", nil, "set a resource limit: NAME=SOFT[:HARD] (nofile=1024:2048)")
	fs.StringArrayVar(&f.Sysctls, "sysctl", nil, "set a namespaced kernel parameter: KEY=VALUE (net.*, kernel.shm*, kernel.msg*, fs.mqueue.*)")
	fs.IntVar(&f.oomScoreAdj, "oom-score-adj", 0, "tune the OOM killer's preference for the container (-1000 to 1000)")
	fs.StringVar(&f.ShmSize, "shm-size", "", "size of /dev/shm (default 64m)")
	fs.StringArrayVar(&f.Tmpfs, "tmpfs", nil, "mount a tmpfs: /PATH[:OPTIONS] (rw,size=64m,mode=1777...)")
}

// Parsed is the options once the flag set is parsed (--oom-score-adj
// counts only when given).
func (f *Flags) Parsed() Options {
	o := f.Options
	if f.fs != nil && f.fs.Changed("oom-score-adj") {
		v := f.oomScoreAdj
		o.OOMScoreAdj = &v
	}
	return o
}

func (f *Flags) Configure(c *spine.Container) ([]spine.Step, error) {
	h, err := ThisHost()
	if err != nil {
		return nil, err
	}
	if err := Apply(c.Spec, f.Parsed(), h); err != nil {
		return nil, err
	}
	return []spine.Step{NewStep()}, nil
}
