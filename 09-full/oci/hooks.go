//go:build linux

package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
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

// runHooks runs each hook in order with st on its stdin; the first that
// fails (or outlives its timeout, default 30 s) is the error.
func runHooks(kind string, hooks []specs.Hook, st State) error {
	input, err := json.Marshal(st)
	if err != nil {
		return err
	}
	for _, h := range hooks {
		d := 30 * time.Second
		if h.Timeout != nil {
			if *h.Timeout <= 0 {
				return fmt.Errorf("%s hook %s: timeout %d: want more than 0 seconds", kind, h.Path, *h.Timeout)
			}
			d = time.Duration(*h.Timeout) * time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), d)
		cmd := exec.CommandContext(ctx, h.Path)
		if len(h.Args) > 0 {
			cmd.Args = h.Args // args[0] is the hook's own argv[0], as the spec says
		}
		cmd.Env = h.Env
		cmd.Stdin = bytes.NewReader(input)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		timedOut := ctx.Err() != nil
		cancel()
		if timedOut {
			return fmt.Errorf("%s hook %s: did not finish within %s", kind, h.Path, d)
		}
		if err != nil {
			msg := bytes.TrimSpace(out.Bytes())
			if len(msg) > 512 {
				msg = msg[:512]
			}
			return fmt.Errorf("%s hook %s: %v: %s", kind, h.Path, err, msg)
		}
		debugf("%s hook %s ran", kind, h.Path)
	}
	return nil
}
