package security

import (
	"errors"
	"os"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// InitPath is where the init binary appears inside the container. /dev is
// the container's own tmpfs, so the mount point is made there and the
// image is not written to (Docker uses /sbin/docker-init, podman
// /run/podman-init).
const InitPath = "/dev/init"

// initCandidates are static inits on the host, in order of preference:
// static, because the container's root may have no C library, or another.
// Debian's tini package ships tini-static; Docker's is docker-init.
var initCandidates = []string{"/usr/bin/tini-static", "/usr/libexec/docker/docker-init", "/usr/bin/docker-init"}

// FindInit returns the first static init found on the host.
func FindInit() (string, error) {
	for _, p := range initCandidates {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", errors.New("--init needs a static init on the host: install Debian's tini package (it ships /usr/bin/tini-static)")
}

// WithInit makes a small init PID 1, as docker run --init does: the host's
// init binary is bound read-only at InitPath, and becomes argv[0] with the
// command after "--". The init (tini) reaps orphans and passes signals on;
// and the container's PID 1 is then no host binary of berth's, which root
// in the container could read through /proc/1/exe, or trace.
func WithInit(spec *specs.Spec, hostPath string) {
	spec.Mounts = slices.DeleteFunc(spec.Mounts, func(m specs.Mount) bool { return m.Destination == InitPath })
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: InitPath, Type: "bind", Source: hostPath,
		Options: []string{"bind", "ro", "nosuid", "nodev"}})
	if len(spec.Process.Args) > 0 && spec.Process.Args[0] == InitPath {
		return
	}
	spec.Process.Args = append([]string{InitPath, "--"}, spec.Process.Args...)
}
