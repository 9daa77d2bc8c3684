//go:build linux

package spine

import (
	"fmt"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

// Run runs the container in the foreground, Create and Start back to
// back, and returns the exit code berth should end with: the command's, or
// 125/126/127 when it could not start. Whatever Prepare and Parent set up
// is cleaned up on every path. This is stages 01-08's `run`.
func Run(c *Container) (code int, err error) {
	// Catch signals before the child exists so none is lost in between;
	// until the command runs they wait in the channel.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, ForwardedSignals...)
	defer signal.Stop(sigs)

	p, err := Create(c, CreateOptions{})
	if err != nil {
		return ExitCode(err), err
	}
	defer func() {
		p.Close()
		// A cleanup that failed leaves the state: the next run's Collect
		// finds it (its lock is free once we exit) and tries again.
		if cerr := Cleanup(c); cerr != nil && err == nil {
			code, err = ExitRuntime, fmt.Errorf("%w (its state stays in %s: the next run tries again)", cerr, c.StateDir())
		}
		p.st.unlock()
	}()
	if err := p.Start(); err != nil {
		// The child may have reported its own failure; prefer that.
		_ = p.Signal(unix.SIGKILL)
		_, _ = p.Wait()
		return ExitCode(err), err
	}
	go func() {
		for s := range sigs {
			_ = p.Signal(s)
		}
	}()
	return p.Wait()
}
