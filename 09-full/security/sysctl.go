package security

import (
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ipcSysctls are the System V IPC settings the kernel keeps per IPC
// namespace (runc's and Docker's list); fs.mqueue.* are too.
var ipcSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
	"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
}

// isHostNamespace reports whether a namespace joined by path is the
// runtime's own (set on Linux; see host_linux.go).
var isHostNamespace = func(path string, t specs.LinuxNamespaceType) bool { return false }

// SetSysctl is --sysctl KEY=VALUE, validated first (see CheckSysctl).
func SetSysctl(spec *specs.Spec, key, value string) error {
	if err := CheckSysctl(spec, key); err != nil {
		return fmt.Errorf("--sysctl %s: %w", key, err)
	}
	if spec.Linux.Sysctl == nil {
		spec.Linux.Sysctl = map[string]string{}
	}
	spec.Linux.Sysctl[key] = value
	return nil
}

// CheckSysctl allows only a setting that lives in a namespace of the
// container's own, as runc does: anything else is the host's, and writing
// it from a container would change the machine. kernel.msg*, kernel.sem,
// kernel.shm* and fs.mqueue.* need a private IPC namespace, net.* a
// private network namespace, kernel.domainname a private UTS namespace.
// The key names a file under /proc/sys: it must be plain dotted words,
// never a path.
func CheckSysctl(spec *specs.Spec, key string) error {
	if key == "" || len(key) > 256 {
		return fmt.Errorf("invalid sysctl name %q", key)
	}
	for _, part := range strings.Split(key, ".") {
		if part == "" || part == ".." || strings.ContainsAny(part, "/\x00 \t\n") {
			return fmt.Errorf("invalid sysctl name %q: use dotted words such as net.ipv4.ip_forward", key)
		}
	}
	own := func(t specs.LinuxNamespaceType) bool {
		if spec.Linux == nil {
			return false
		}
		for _, ns := range spec.Linux.Namespaces {
			if ns.Type == t {
				return ns.Path == "" || !isHostNamespace(ns.Path, t)
			}
		}
		return false
	}
	switch {
	case ipcSysctls[key] || strings.HasPrefix(key, "fs.mqueue."):
		if !own(specs.IPCNamespace) {
			return fmt.Errorf("sysctl %s needs a private IPC namespace (the container shares the host's)", key)
		}
	case strings.HasPrefix(key, "net."):
		if !own(specs.NetworkNamespace) {
			return fmt.Errorf("sysctl %s needs a private network namespace (--net host shares the host's)", key)
		}
	case key == "kernel.domainname":
		if !own(specs.UTSNamespace) {
			return fmt.Errorf("sysctl %s needs a private UTS namespace", key)
		}
	case key == "kernel.hostname":
		return fmt.Errorf("sysctl %s: set the hostname with --hostname (the spec's hostname field)", key)
	default:
		return fmt.Errorf("sysctl %s is not namespaced: it would change the host (berth allows kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.* and kernel.domainname)", key)
	}
	return nil
}

// checkSysctls validates a spec's linux.sysctl (a bundle's, say).
func checkSysctls(spec *specs.Spec) error {
	for k := range spec.Linux.Sysctl {
		if err := CheckSysctl(spec, k); err != nil {
			return fmt.Errorf("linux.sysctl: %w", err)
		}
	}
	return nil
}
