//go:build linux

// Package execin runs one more process inside a running container, as
// `docker exec` does: in every namespace of the container's init (joined
// before the Go runtime starts, package nsenter), in its cgroup (before
// the process runs one instruction of its own), with the container's
// environment, user and working directory unless the caller overrides
// them, and with the same restrictions as the init (capabilities,
// no_new_privs, seccomp: security.Finalize). The caller is the process's
// parent and gets its exit status; health checks (`berth internal
// healthcheck`) use the same machinery.
//
// The same berth binary plays both parts. The caller (Start) starts a
// nsenter.Cmd, moves its final process into the container's cgroup, lets
// it continue and sends it a Request. The final process (Final, called
// from main when nsenter.Joined) opens a pty if asked, resolves -u against
// the container's /etc/passwd, enters the working directory (checked to be
// inside the root), finds the command, applies the restrictions and
// executes it. What it answers over the socket:
//
//	{"pty":true} + the pty master (SCM_RIGHTS)   with -t, first
//	{"error":"...","code":N}                     it could not execute
//	EOF (the socket is close-on-exec)            execve worked
package execin

import (
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Options are the flags of `berth exec` (and a health check's command).
type Options struct {
	Args       []string
	Env        []string // K=V, added to the container's (-e, --env-file)
	User       string   // -u USER[:GROUP]; "" is the container's user
	Workdir    string   // -w; "" is the container's working directory
	Tty        bool     // -t
	Privileged bool     // --privileged: every capability
	// AllCaps is the capability list --privileged grants (the host's).
	AllCaps []string
}

// A Request is what the caller sends the final process: the process to
// become, the user to resolve inside (if -u), and the container's seccomp
// profile, which security.Finalize loads.
type Request struct {
	Process *specs.Process      `json:"process"`
	User    string              `json:"user,omitempty"`
	Seccomp *specs.LinuxSeccomp `json:"seccomp,omitempty"`
}

// reply is the final process's answer when the command did not start.
type reply struct {
	Pty   bool   `json:"pty,omitempty"`
	Error string `json:"error,omitempty"`
	Code  int    `json:"code,omitempty"`
}

// NewRequest makes the process of an exec from the container's spec, as
// Docker does (moby's daemon/exec.go): the container's process is the
// template — its environment, user, working directory, capabilities,
// rlimits, no_new_privs — and the options replace or add to it. The
// container's terminal setting and arguments are not inherited.
func NewRequest(spec *specs.Spec, o Options) (*Request, error) {
	if spec == nil || spec.Process == nil {
		return nil, fmt.Errorf("exec: the container has no process in its spec")
	}
	if len(o.Args) == 0 || o.Args[0] == "" {
		return nil, fmt.Errorf("exec: no command")
	}
	base := spec.Process
	p := &specs.Process{
		Terminal:        o.Tty,
		Args:            append([]string{}, o.Args...),
		Env:             mergeEnv(base.Env, o.Env),
		Cwd:             base.Cwd,
		User:            base.User,
		Rlimits:         base.Rlimits,
		NoNewPrivileges: base.NoNewPrivileges,
		OOMScoreAdj:     base.OOMScoreAdj,
	}
	if base.Capabilities != nil {
		c := *base.Capabilities
		p.Capabilities = &c
	}
	if o.Workdir != "" {
		if !strings.HasPrefix(o.Workdir, "/") {
			return nil, fmt.Errorf("exec: the working directory %q is not an absolute path", o.Workdir)
		}
		p.Cwd = o.Workdir
	}
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	if o.Privileged && p.Capabilities != nil {
		all := append([]string{}, o.AllCaps...)
		p.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all, Inheritable: all}
	}
	r := &Request{Process: p, User: o.User}
	if spec.Linux != nil {
		r.Seccomp = spec.Linux.Seccomp
	}
	return r, nil
}

// mergeEnv is the container's environment with each K=V of add set (a
// later one wins, as Docker's).
func mergeEnv(base, add []string) []string {
	out := append([]string{}, base...)
	for _, kv := range add {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, old := range out {
			if ok, _, _ := strings.Cut(old, "="); ok == k {
				out[i], replaced = kv, true
				break
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}
