//go:build linux

// Package pid gives a container its own process tree: new PID and IPC
// namespaces, a private mount namespace so that a fresh /proc can be mounted
// without touching the host's, and, with --init, a small init that stays
// PID 1 to reap orphans and forward signals (as docker run --init / tini).
package pid

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"berth/01-uts/spine"
)

func init() { spine.Register("pid", func() spine.Step { return &Step{} }) }

// Options is the --init flag.
type Options struct {
	Init bool
}

func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.Init, "init", false, "run a small init as PID 1 that reaps zombies and forwards signals to the command")
}

func (o *Options) Configure(c *spine.Container) ([]spine.Step, error) {
	c.AddNamespace(specs.PIDNamespace, "")
	c.AddNamespace(specs.IPCNamespace, "")
	// /proc shows the PID namespace of whoever mounted it; mounting a new
	// one needs a mount namespace of our own.
	c.AddNamespace(specs.MountNamespace, "")
	return []spine.Step{&Step{Init: o.Init}}, nil
}

// Step mounts the private /proc and, with Init, runs the command under a
// minimal init.
type Step struct {
	Init bool `json:"init,omitempty"`
}

func (*Step) Name() string { return "pid" }

// Child makes every mount private first: without that, the new mount
// namespace still shares propagation with the host on systemd machines
// (where / is "shared"), and mounting proc on /proc would replace the
// host's /proc too. With a root filesystem of its own (stage 03) the
// container gets its /proc there instead.
func (s *Step) Child(c *spine.Container) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / rprivate: %w", err)
	}
	c.Logf("pid: mount propagation of / is now private")
	if c.Spec.Root != nil && c.Spec.Root.Path != "" {
		return nil
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount proc on /proc: %w", err)
	}
	c.Logf("pid: mounted a new proc on /proc")
	return nil
}

// Exec runs the command as PID 1 (the default, like docker run), or under
// the small init of init.go with --init.
func (s *Step) Exec(c *spine.Container, path string, argv, env []string) error {
	if !s.Init {
		return spine.Execve(path, argv, env)
	}
	return runInit(c, path, argv, env)
}
