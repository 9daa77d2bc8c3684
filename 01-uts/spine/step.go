// Package spine is the skeleton every berth stage hangs on: the parent
// re-executes its own binary as the container's init, sends it the
// configuration over a socket, does its share of the work while the child
// waits, then lets it go on. Each stage contributes Steps; the spine only
// runs them in order.
package spine

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"sync"

	"github.com/spf13/pflag"
)

// A Step is one mechanism's contribution to a container: a name, a
// JSON-serialisable configuration (the step value itself) and any of the
// optional actions below. The parent runs the parent-side actions in list
// order, the child the child-side ones, and cleanup runs in reverse.
type Step interface {
	Name() string
}

// Preparer runs in the parent before the child exists: check input,
// allocate an address, create a cgroup, write files the child will mount.
type Preparer interface {
	Prepare(c *Container) error
}

// CmdSetter adjusts the exec.Cmd that starts the child (for example to
// start it inside a cgroup with clone3).
type CmdSetter interface {
	SetupCmd(c *Container, cmd *exec.Cmd) error
}

// Parenter runs in the parent after the child exists and before it is
// released: write uid maps, move a veth into its namespace.
type Parenter interface {
	Parent(c *Container, pid int) error
}

// PreChilder runs inside the container, in list order, before any step's
// Child: it makes what an earlier step's Child will use. Stage 07 mounts a
// rootless container's overlay here, in the container's own user and mount
// namespaces (only there may it), before 03's rootfs step pivots into
// c.Spec.Root.Path.
type PreChilder interface {
	PreChild(c *Container) error
}

// Childer runs inside the container, in list order, before the command is
// executed: set the hostname, mount, pivot_root.
type Childer interface {
	Child(c *Container) error
}

// Execer replaces the final execve of the command (stage 02's --init keeps
// itself as PID 1 and runs the command as its child). The last step in the
// list that implements it wins. When it runs, the working directory is
// checked, the umask set, and every fd above 2 but c.PreserveFds is
// close-on-exec; one that starts the command as a child gives it
// c.CommandFiles() and nothing else.
type Execer interface {
	Exec(c *Container, path string, argv, env []string) error
}

// PreExecer runs inside the container after every Childer step, as the
// very last thing before the command is executed (or, with --init,
// started): for what must not bind berth's own init while it sets up.
// pids.max counts threads, and the Go init has several.
type PreExecer interface {
	PreExec(c *Container) error
}

// Cleaner undoes what Prepare and Parent did. It runs after the container
// exits, after a failed start, and from a later run that finds the state of
// a runtime that was killed; so it must be idempotent and must not assume
// Prepare ran to the end.
type Cleaner interface {
	Cleanup(c *Container) error
}

// Holder keeps files open for as long as the container runs: stage 04's
// reserved host ports, stage 05's pipe that keeps slirp4netns alive. A
// foreground runtime holds them by living; a detached container's creator
// hands them to the process that outlives it (Process.Held).
type Holder interface {
	Held() []*os.File
}

// An Option is a stage's share of the command line: it registers its flags
// and, once they are parsed, configures the container and returns its steps.
type Option interface {
	AddFlags(fs *pflag.FlagSet)
	Configure(c *Container) ([]Step, error)
}

// A RootlessOption can make a container that a user without root may run
// (stage 05's user namespace). Without one, run stops such a user at once.
type RootlessOption interface {
	RunsRootless() bool
}

var (
	registryMu sync.Mutex
	registry   = map[string]func() Step{}
)

// Register makes a step type known by name, so that the child (and a later
// run collecting a killed one) can rebuild it from its JSON. Call it from the
// step package's init function.
func Register(name string, newStep func() Step) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("spine: step registered twice: " + name)
	}
	registry[name] = newStep
}

// Registered lists the names of the known steps, sorted.
func Registered() []string {
	registryMu.Lock()
	defer registryMu.Unlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// wireStep is how a step travels: its name and its configuration.
type wireStep struct {
	Name   string          `json:"name"`
	Config json.RawMessage `json:"config"`
}

func encodeSteps(steps []Step) ([]wireStep, error) {
	out := make([]wireStep, 0, len(steps))
	for _, s := range steps {
		b, err := json.Marshal(s)
		if err != nil {
			return nil, fmt.Errorf("encode step %s: %w", s.Name(), err)
		}
		out = append(out, wireStep{Name: s.Name(), Config: b})
	}
	return out, nil
}

func decodeSteps(in []wireStep) ([]Step, error) {
	registryMu.Lock()
	defer registryMu.Unlock()
	out := make([]Step, 0, len(in))
	for _, w := range in {
		newStep, ok := registry[w.Name]
		if !ok {
			return nil, fmt.Errorf("unknown step %q (not registered in this binary)", w.Name)
		}
		s := newStep()
		if err := json.Unmarshal(w.Config, s); err != nil {
			return nil, fmt.Errorf("decode step %s: %w", w.Name, err)
		}
		out = append(out, s)
	}
	return out, nil
}
