//go:build linux

package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Hooks are programs of the host the bundle names, run by berth-oci in
// its own namespaces with the container's state as JSON on their stdin:
//
//	prestart, createRuntime  when create has made the container (the init
//	                         waits on its FIFO: namespaces, mounts, cgroup
//	                         are there), before create returns
//	poststart                when start has let the command run
//	poststop                 when delete has removed the container
//
// createContainer and startContainer run inside the container's mount
// namespace, which berth's init does not do yet: a bundle that has them
// is refused in one line rather than run without them.

// checkHooks refuses the hooks berth-oci does not run.
func checkHooks(h *specs.Hooks) error {
	if h == nil {
		return nil
	}
	if len(h.CreateContainer) > 0 {
		return errors.New("hooks.createContainer is not supported (it runs inside the container before pivot_root)")
	}
	if len(h.StartContainer) > 0 {
		return errors.New("hooks.startContainer is not supported (it runs inside the container before the command)")
	}
	//lint:ignore SA1019 prestart is deprecated, and bundles still have it: berth-oci runs it as runc does
	for _, list := range [][]specs.Hook{h.Prestart, h.CreateRuntime, h.Poststart, h.Poststop} {
		for _, x := range list {
			if x.Path == "" || x.Path[0] != '/' {
				return fmt.Errorf("hook path %q: want an absolute path", x.Path)
			}
		}
	}
	return nil
}

// maxHookOutput bounds what berth-oci keeps of a hook's stdout and
// stderr (for its error message): the rest is read and dropped, so a hook
// that floods its output neither fills berth-oci's memory nor blocks.
const maxHookOutput = 64 << 10

// hookWaitDelay is how long berth-oci waits for a hook's output to end
// once the hook has exited or been killed: a process the hook left behind
// (sh -c 'daemon &') may hold the pipe open for as long as it lives.
const hookWaitDelay = 2 * time.Second

// runHooks runs each hook in order with st on its stdin; the first that
// fails (or outlives its timeout, default 30 s) is the error.
func runHooks(kind string, hooks []specs.Hook, st State) error {
	input, err := json.Marshal(st)
	if err != nil {
		return err
	}
	for _, h := range hooks {
		if _, err := runHook(kind, h, input); err != nil {
			return err
		}
		debugf("%s hook %s ran", kind, h.Path)
	}
	return nil
}

// runHook runs one hook and returns what it wrote (at most
// maxHookOutput bytes). The hook runs in a process group of its own, and
// the timeout kills the group: killing the hook alone would leave its
// children holding the output pipe, and berth-oci waiting on them.
func runHook(kind string, h specs.Hook, input []byte) ([]byte, error) {
	d := 30 * time.Second
	if h.Timeout != nil {
		if *h.Timeout <= 0 {
			return nil, fmt.Errorf("%s hook %s: timeout %d: want more than 0 seconds", kind, h.Path, *h.Timeout)
		}
		d = time.Duration(*h.Timeout) * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.Path)
	if len(h.Args) > 0 {
		cmd.Args = h.Args // args[0] is the hook's own argv[0], as the spec says
	}
	cmd.Env = h.Env
	cmd.Stdin = bytes.NewReader(input)
	out := &cappedBuffer{max: maxHookOutput}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The group's id is the hook's pid (Setpgid with Pgid 0).
		return unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
	}
	// A child that left the group (setsid) still cannot hold berth-oci:
	// WaitDelay closes the pipes once the hook is gone.
	cmd.WaitDelay = hookWaitDelay
	err := cmd.Run()
	if ctx.Err() != nil {
		return out.Bytes(), fmt.Errorf("%s hook %s: did not finish within %s", kind, h.Path, d)
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		// The hook exited 0; what it left behind kept its output open.
		debugf("%s hook %s: exited, and left a process holding its output", kind, h.Path)
		err = nil
	}
	if err != nil {
		msg := bytes.TrimSpace(out.Bytes())
		if len(msg) > 512 {
			msg = msg[:512]
		}
		return out.Bytes(), fmt.Errorf("%s hook %s: %v: %s", kind, h.Path, err, msg)
	}
	return out.Bytes(), nil
}

// cappedBuffer keeps the first max bytes written to it and drops the
// rest, telling the writer all went well (a hook must not fail, or
// block, because its output is not kept).
type cappedBuffer struct {
	mu  sync.Mutex // after WaitDelay, Wait may return while a copy still writes
	buf bytes.Buffer
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (b *cappedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Bytes()
}
