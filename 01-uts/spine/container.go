package spine

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth/01-uts/spine/roots"
)

// Exit codes, as Docker uses them.
const (
	ExitRuntime       = 125 // berth itself failed
	ExitNotExecutable = 126 // the command exists but cannot be executed
	ExitNotFound      = 127 // the command was not found
)

// DefaultPath is the PATH a container gets unless the user sets one.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// A Container is everything the steps share. The parent fills it from flags;
// the child receives the same values over the sync socket. Its Spec is the
// OCI runtime spec, filled in stage by stage, so that the full runtime of
// stage 09 can take one from an OCI bundle instead.
type Container struct {
	ID       string      `json:"id"`
	Spec     *specs.Spec `json:"spec"`
	DataRoot string      `json:"dataRoot"` // persistent data: images, layers, rootfs (--data-root)
	State    string      `json:"state"`    // live state of running containers (--root, as runc names it)
	Verbose  bool        `json:"verbose"`
	Prog     string      `json:"prog"` // the stage's name, for messages
	// Detached: the container outlives the process that created it (see
	// CreateOptions): a step must tie nothing to that process's life.
	Detached bool `json:"detached,omitempty"`
	// ConsoleSocket: the init sends its pty's master over a console
	// socket (the fd after the exec FIFO), not the sync socket.
	ConsoleSocket bool `json:"consoleSocket,omitempty"`
	// PreserveFds are file descriptors of the runtime that the command
	// gets, at the same numbers: the OCI CLI's --preserve-fds N is 3 to
	// 3+N-1, systemd's socket activation (LISTEN_FDS) the same. Every
	// other descriptor above 2 is closed on exec (see inherit.go).
	PreserveFds []int `json:"preserveFds,omitempty"`

	// Steps in order; not serialised here (they travel as wireSteps).
	Steps []Step `json:"-"`
	// Pid is the container's init as the host sees it (parent side only).
	Pid int `json:"-"`

	log  io.Writer
	sync *os.File // child side: the sync socket until the command runs
}

// NewContainer returns a container with an empty spec that runs args. Its
// working directory is the caller's until a stage gives it a root of its
// own (03-mount sets "/").
func NewContainer(prog string, args []string) *Container {
	cwd, err := os.Getwd()
	if err != nil {
		cwd = "/"
	}
	return &Container{
		Prog:     prog,
		DataRoot: roots.DataEnvOrDefault(),
		State:    roots.StateEnvOrDefault(),
		Spec: &specs.Spec{
			Version: specs.Version,
			Process: &specs.Process{
				Args: args,
				Env:  []string{"PATH=" + DefaultPath},
				Cwd:  cwd,
			},
			Linux: &specs.Linux{},
		},
		log: os.Stderr,
	}
}

// StateDir is this container's own directory of live state.
func (c *Container) StateDir() string { return filepath.Join(c.State, c.ID) }

// Logf prints what a step did when --verbose is on.
func (c *Container) Logf(format string, args ...any) {
	if !c.Verbose || c.log == nil {
		return
	}
	fmt.Fprintf(c.log, "["+c.Prog+"] "+format+"\n", args...)
}

// AddNamespace asks for a namespace of the given type; path, when not
// empty, joins an existing one instead of creating one.
func (c *Container) AddNamespace(t specs.LinuxNamespaceType, path string) {
	c.RemoveNamespace(t)
	c.Spec.Linux.Namespaces = append(c.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: t, Path: path})
}

// RemoveNamespace drops a namespace request (for example --net=host).
func (c *Container) RemoveNamespace(t specs.LinuxNamespaceType) {
	ns := c.Spec.Linux.Namespaces[:0]
	for _, n := range c.Spec.Linux.Namespaces {
		if n.Type != t {
			ns = append(ns, n)
		}
	}
	c.Spec.Linux.Namespaces = ns
}

// Namespace reports whether the spec has a namespace of type t, and its path.
func (c *Container) Namespace(t specs.LinuxNamespaceType) (path string, ok bool) {
	for _, n := range c.Spec.Linux.Namespaces {
		if n.Type == t {
			return n.Path, true
		}
	}
	return "", false
}

// SetEnv sets KEY=VALUE in the process environment, replacing an old value.
func (c *Container) SetEnv(key, value string) {
	p := c.Spec.Process
	for i, kv := range p.Env {
		if len(kv) > len(key) && kv[:len(key)+1] == key+"=" {
			p.Env[i] = key + "=" + value
			return
		}
	}
	p.Env = append(p.Env, key+"="+value)
}

// ExitError carries the exit code berth should end with.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Exitf makes an error that ends berth with the given code.
func Exitf(code int, format string, args ...any) error {
	return &ExitError{Code: code, Err: fmt.Errorf(format, args...)}
}

// ExitCode is the code an error should end berth with: its own, or 125.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var e *ExitError
	if errors.As(err, &e) {
		return e.Code
	}
	return ExitRuntime
}

var idPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$`)

// ValidID reports whether id is usable as a container id: it names files,
// cgroups and network links, so it is kept to a safe alphabet.
func ValidID(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("invalid container id %q: use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit", id)
	}
	return nil
}

// RandomID returns 12 random hex digits, the short form Docker shows.
func RandomID() string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		panic("spine: crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
