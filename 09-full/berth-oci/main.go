// Command berth-oci is runc's command line over berth's engine: containerd's
// shim, conmon (podman), dockerd and a learner at a shell drive it with an
// OCI bundle (a config.json and a root filesystem), and the container is
// set up by the same steps as berth's own (engine.Steps). `make build`
// makes it bin/berth-oci. Chapter: docs/09-oci.md.
package main

import (
	"berth/01-uts/spine"
	"berth/09-full/execin"
	"berth/09-full/nsenter"
	"berth/09-full/oci"
)

func main() {
	// A process `berth-oci exec` started: its namespaces were joined
	// before the Go runtime started (nsenter's constructor); it executes
	// the command and never returns.
	if nsenter.Joined() {
		execin.Final()
	}
	// The container's init is this binary, re-executed: it runs the
	// spine's child side and never returns.
	spine.MaybeInit()
	spine.StartRuntime("berth-oci")
	oci.Main()
}
