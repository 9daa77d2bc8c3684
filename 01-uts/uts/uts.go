//go:build linux

// Package uts gives a container its own hostname: a new UTS namespace
// (clone with CLONE_NEWUTS) and sethostname(2) inside it.
package uts

import (
	"fmt"
	"os"
	"regexp"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"berth/01-uts/spine"
)

func init() { spine.Register("uts", func() spine.Step { return &Step{} }) }

// Options is the --hostname flag.
type Options struct {
	Hostname string
}

func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Hostname, "hostname", "", "hostname inside the container (default: the container id)")
}

// A hostname is a DNS label, or several joined by dots (RFC 1123).
var hostnamePattern = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$`)

func (o *Options) Configure(c *spine.Container) ([]spine.Step, error) {
	h := o.Hostname
	if h == "" {
		h = c.ID
		if len(h) > 12 {
			h = h[:12]
		}
	}
	if len(h) > 64 || !hostnamePattern.MatchString(h) {
		return nil, fmt.Errorf("invalid --hostname %q: use letters, digits, '-' and '.', at most 64 characters", h)
	}
	c.Spec.Hostname = h
	c.AddNamespace(specs.UTSNamespace, "")
	c.SetEnv("HOSTNAME", h)
	return []spine.Step{&Step{}}, nil
}

// Step sets the hostname; its configuration is the spec's Hostname.
type Step struct{}

func (*Step) Name() string { return "uts" }

// Parent shows, with --verbose, that the child's UTS namespace is a
// different object from ours: the inode numbers behind /proc/PID/ns/uts.
func (*Step) Parent(c *spine.Container, pid int) error {
	if !c.Verbose {
		return nil
	}
	host, err := os.Readlink("/proc/self/ns/uts")
	if err != nil {
		return fmt.Errorf("readlink /proc/self/ns/uts: %w", err)
	}
	child, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/uts", pid))
	if err != nil {
		return fmt.Errorf("readlink /proc/%d/ns/uts: %w", pid, err)
	}
	c.Logf("uts: host  /proc/self/ns/uts -> %s", host)
	c.Logf("uts: child /proc/%d/ns/uts -> %s", pid, child)
	return nil
}

// Child sets the hostname; only this namespace sees it.
func (*Step) Child(c *spine.Container) error {
	if c.Spec.Hostname == "" {
		return nil
	}
	if err := unix.Sethostname([]byte(c.Spec.Hostname)); err != nil {
		return fmt.Errorf("sethostname %q: %w", c.Spec.Hostname, err)
	}
	c.Logf("uts: hostname set to %q", c.Spec.Hostname)
	return nil
}
