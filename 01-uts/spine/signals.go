//go:build linux

package spine

import (
	"context"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

// ForwardedSignals are the signals a runtime passes on to the container,
// as `docker run` does: the runtime to the container's init (Run), and
// stage 02's init to the command. SIGKILL and SIGSTOP cannot be caught,
// and need not be: the kernel delivers them regardless.
var ForwardedSignals = []os.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2}

// InterruptSignals end a verb that works for a while (a pull, a load, a
// build, a commit): Ctrl-C, a kill, the terminal going away. The verb
// stops and takes back what it had done so far.
var InterruptSignals = []os.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGHUP}

// NotifyInterrupt is ctx, ended by the first of InterruptSignals; stop
// lets the signals go again.
func NotifyInterrupt(ctx context.Context) (_ context.Context, stop context.CancelFunc) {
	return signal.NotifyContext(ctx, InterruptSignals...)
}
