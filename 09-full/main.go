// Command berth (09-full) is the runtime the book builds toward: Docker's
// command line (run, create, start, ps, logs, stop, rm, inspect, attach...)
// over the engine of stages 01-08, daemonless, with a small monitor per
// container. `make build` makes it bin/berth (and bin/09-full). Chapter:
// docs/09-full.md.
package main

import (
	"berth/01-uts/spine"
	"berth/09-full/cli"
	"berth/09-full/execin"
	"berth/09-full/nsenter"
)

func main() {
	// A process `berth exec` started: its namespaces were joined before
	// the Go runtime started (nsenter's constructor); it executes the
	// command and never returns.
	if nsenter.Joined() {
		execin.Final()
	}
	// The container's init is this binary, re-executed: it runs the
	// spine's child side and never returns.
	spine.MaybeInit()
	spine.StartRuntime("berth")
	cli.Main()
}
