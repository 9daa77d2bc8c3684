//go:build linux

package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"berth/01-uts/spine"
	"berth/07-unionfs/tree"
	"berth/08-image/store"
	"berth/internal/lockfile"
)

// RUN is a container: this binary's own run verb, on the previous step's
// image, with its ENV, WORKDIR and USER, the ARGs as variables, and no
// network (--net none: nothing here can download, and a build must not
// reach the host's network either). It runs without --rm: when the
// command succeeds, what it changed (its container layer, stage 07) is
// stored as the step's layer, then the container layer is removed. A
// command that fails stops the build, naming it, with its exit code.
//
// Nothing is left behind on any path. The container layer is removed
// whether the command succeeded or not; on Ctrl-C (or SIGTERM) the build
// kills the container, waits for run to clean up after it, removes the
// layer, and stops. The build holds a lock file per RUN container
// (images/builds/ID.lock) for as long as its layer exists, so that if the
// build itself is killed (SIGKILL: its run is killed with it), the next
// build finds the layer whose lock nobody holds and removes it.

func (b *builder) runStep(ctx context.Context, st *stage, in instruction) error {
	if st.img == nil {
		return in.errorf("needs an image with a shell below it: FROM scratch has nothing to run")
	}
	argv := commandLine(in, st.ms.shell)
	// The ARGs reach the command as variables (not kept in the image); an
	// ENV of the same name wins, as in docker.
	var env []string
	for _, kv := range st.args {
		k, _, _ := strings.Cut(kv, "=")
		if _, inEnv := envList(st.cfg.Config.Env).Get(k); !inEnv {
			env = append(env, kv)
		}
	}
	sort.Strings(env)
	createdBy := strings.Join(argv, " ") // for history only: the cache keys on argv itself
	if len(env) > 0 {
		// docker's history shows them this way: |2 A=1 B=2 /bin/sh -c ...
		createdBy = fmt.Sprintf("|%d %s %s", len(env), strings.Join(env, " "), createdBy)
	}
	key := b.key(st, in)
	key.Args, key.Env = argv, env
	if b.cached(st, key) {
		return nil
	}
	l, err := b.run(ctx, st, argv, env)
	if err != nil {
		return err
	}
	if l.DiffID == emptyTar {
		// The command changed no file: no layer, as docker commits it
		// (and the same empty layer twice in a stack would not mount).
		return b.commit(st, key, st.cfg.Config, createdBy, nil)
	}
	return b.commit(st, key, st.cfg.Config, createdBy, &l)
}

// emptyTar is the digest of a tar stream with no entry (1024 zero bytes):
// the diff of a container that changed nothing.
const emptyTar = digest.Digest("sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef")

func (b *builder) run(ctx context.Context, st *stage, argv, env []string) (l store.Layer, err error) {
	id := "build-" + spine.RandomID()
	unlock, err := b.lockRun(ctx, id)
	if err != nil {
		return l, err
	}
	defer unlock()
	defer func() {
		if rerr := b.s.Layers.Remove(id); rerr != nil && err == nil {
			err = fmt.Errorf("remove the container layer of %s: %w", id, rerr)
		}
	}()
	exe := b.o.Exe
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return l, err
		}
	}
	verb := b.o.RunVerb
	if len(verb) == 0 {
		verb = []string{"run"}
	}
	args := append(slices.Clone(verb), "--net", "none", "--id", id, "--data-root", filepath.Dir(b.s.Root),
		"--max-image-size", fmt.Sprint(b.s.Bound()),
		"--image", st.img.ID().String(), "--entrypoint", "")
	for _, kv := range env {
		args = append(args, "-e", kv)
	}
	args = append(append(args, "--"), argv...)
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "BERTH_ROOT="+b.o.StateRoot)
	cmd.Stdout, cmd.Stderr = b.o.Out, b.o.Err
	// If the build dies, its RUN dies with it (and the container with the
	// run, stage 01's Pdeathsig): the next build collects what is left.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	fmt.Fprintf(b.o.Out, " ---> Running in %s\n", id)
	if err := cmd.Start(); err != nil {
		return l, fmt.Errorf("start %s run: %w", exe, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		b.kill(id, done)
	}
	if err := ctx.Err(); err != nil {
		return l, err
	}
	code := cmd.ProcessState.ExitCode()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	if code != 0 {
		// docker's words, and its exit code.
		return l, spine.Exitf(code, "The command '%s' returned a non-zero code: %d", strings.Join(argv, " "), code)
	}
	if l, err = b.s.PutContainerLayer(id); err != nil {
		return l, err
	}
	fmt.Fprintf(b.o.Out, "Removing intermediate container %s\n", id)
	return l, nil
}

// kill stops a RUN container as docker does when a build is cancelled:
// SIGKILL to its init (a PID 1 ignores the SIGINT a terminal sends), then
// waits for run, which cleans up as after any exit.
func (b *builder) kill(id string, done <-chan struct{}) {
	dir := filepath.Join(b.o.StateRoot, id)
	for {
		if _, _, pid, err := spine.ReadState(dir); err == nil && pid > 0 {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		select {
		case <-done:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (b *builder) lockDir() string { return filepath.Join(b.s.Root, "builds") }

// lockRun takes the lock of a RUN container for as long as its layer may
// exist; release removes the lock file, then lets go.
func (b *builder) lockRun(ctx context.Context, id string) (func(), error) {
	if err := os.MkdirAll(b.lockDir(), 0o700); err != nil {
		return nil, err
	}
	l, err := lockfile.Acquire(ctx, filepath.Join(b.lockDir(), id+".lock"), lockfile.Exclusive)
	if err != nil {
		return nil, err
	}
	return l.Remove, nil
}

// collectBuilds removes what killed builds left of their RUNs: a build-*
// container layer, or a lock file alone (killed before the layer was made,
// or after it was removed), whose lock nobody holds and whose run is not
// alive.
func (b *builder) collectBuilds() {
	names, err := tree.ReadNames(filepath.Join(b.s.Layers.Root, "containers"))
	if err != nil {
		return
	}
	locks, err := tree.ReadNames(b.lockDir())
	if err != nil {
		return
	}
	for _, l := range locks {
		if id, ok := strings.CutSuffix(l, ".lock"); ok && !slices.Contains(names, id) {
			names = append(names, id)
		}
	}
	if len(names) == 0 {
		return
	}
	spine.Collect(b.o.StateRoot, false) // the dead runs' own state first
	live, _ := spine.Live(b.o.StateRoot)
	for _, id := range names {
		if !strings.HasPrefix(id, "build-") || spine.ValidID(id) != nil || slices.Contains(live, id) {
			continue
		}
		if err := os.MkdirAll(b.lockDir(), 0o700); err != nil {
			return
		}
		l, err := lockfile.TryAcquire(filepath.Join(b.lockDir(), id+".lock"), lockfile.Exclusive)
		if err != nil {
			continue // a build at work holds it
		}
		if err := b.s.Layers.Remove(id); err != nil && !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(b.o.Err, "berth build: removing %s, left by a build that died: %v\n", id, err)
			l.Unlock()
		} else {
			l.Remove()
		}
	}
}
