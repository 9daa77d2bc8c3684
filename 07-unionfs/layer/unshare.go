//go:build linux

package layer

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth/01-uts/spine"
	"berth/05-user/userns"
)

// A rootless container run with --map-subids (or --uidmap) writes its
// layer with the user's subordinate ids as well as the user's own: a
// `chown 1000 /d` inside is host uid 101000 outside. The user may not read
// what only such an id may, nor delete what is in its directories; root
// may, and so may the container's root, inside a user namespace with the
// same maps. So, as `podman unshare` does, diff, commit and rm of such a
// layer run there: in a container made of nothing but stage 05's user
// namespace, whose command is this binary again (diff, commit) or rm -rf.

// envInside marks the second run of a verb, inside the user namespace.
const envInside = "_BERTH_LAYER_IN_USERNS"

// needsUserns: without root, the layer may hold ids other than the user's.
func needsUserns(r *Record) bool {
	return os.Geteuid() != 0 && r.Rootless && (userns.Size(r.UIDMap) > 1 || userns.Size(r.GIDMap) > 1)
}

// unshare runs verb (diff, commit: this binary with args) again inside a
// user namespace with the container's maps when its layer needs it, and
// reports whether it did. In that second run it marks the store: the ids
// it sees there are already the container's.
func (s *Store) unshare(id string, args ...string) (bool, error) {
	if os.Getenv(envInside) == "1" {
		s.inside = true
		return false, nil
	}
	r, err := s.Load(id)
	if err != nil || !needsUserns(r) {
		return false, nil // a missing layer is the verb's to report
	}
	exe, err := os.Executable()
	if err != nil {
		return true, err
	}
	argv := append([]string{exe, args[0], "--data-root", filepath.Dir(s.Root)}, args[1:]...)
	code, err := s.inUserns(r, argv, os.Getwd)
	if err != nil {
		return true, err
	}
	if code != 0 {
		os.Exit(code) // the second run has said why
	}
	return true, nil
}

// removeInUserns deletes a container layer's links, then its directory,
// from inside its user namespace, where the root may search and delete
// what any mapped id owns, a mode 000 directory included, with no chmod.
// rm -rf never follows a symlink: not a link of l/, not one the container
// wrote in its diff.
func (s Store) removeInUserns(r *Record, links []string) error {
	dir := s.Dir(r.ID)
	argv := append(append([]string{"rm", "-rf", "--"}, links...), dir)
	code, err := s.inUserns(r, argv, func() (string, error) { return "/", nil })
	if err == nil && code != 0 {
		err = fmt.Errorf("rm exited with status %d", code)
	}
	if err != nil {
		return fmt.Errorf("remove %s in a user namespace with the container's maps: %w", dir, err)
	}
	return nil
}

// inUserns runs argv in a new user namespace with r's maps, written by
// newuidmap and newgidmap (stage 05's step), in the host's other
// namespaces, and returns its exit code.
func (s Store) inUserns(r *Record, argv []string, cwd func() (string, error)) (int, error) {
	return s.inNamespaces(r, argv, cwd, []string{envInside + "=1"}, false)
}

// RunInUserns runs argv, in directory cwd and with env added to this
// process's, in a new user namespace with r's maps and a new mount
// namespace that user namespace owns, and returns its exit code. There
// the container's root is root and may mount r's overlay (OpenDetached),
// which a rootless layer's userxattr overlay allows only in a mount
// namespace of its own user namespace: berth cp of a stopped rootless
// container runs there. Everything else is the host's: its files are
// reached with the user's rights, and those of the ids the maps give.
func (s Store) RunInUserns(r *Record, argv, env []string, cwd string) (int, error) {
	return s.inNamespaces(r, argv, func() (string, error) { return cwd, nil }, env, true)
}

func (s Store) inNamespaces(r *Record, argv []string, cwd func() (string, error), env []string, mountns bool) (int, error) {
	step := &userns.Step{Rootless: true}
	var err error
	if step.NewUIDMap, err = exec.LookPath("newuidmap"); err != nil {
		return 0, fmt.Errorf("the layer holds files of your subordinate ids, which only newuidmap lets you reach: %w", err)
	}
	if step.NewGIDMap, err = exec.LookPath("newgidmap"); err != nil {
		return 0, fmt.Errorf("the layer holds files of your subordinate ids, which only newgidmap lets you reach: %w", err)
	}
	c := spine.NewContainer("berth", argv)
	if c.Spec.Process.Cwd, err = cwd(); err != nil {
		return 0, err
	}
	c.ID = "unshare-" + spine.RandomID()
	c.State = filepath.Join(s.Root, "unshare") // a killed run's state is collected by the next
	c.DataRoot = filepath.Dir(s.Root)
	c.Spec.Process.Env = append(os.Environ(), env...)
	c.Spec.Linux.UIDMappings, c.Spec.Linux.GIDMappings = r.UIDMap, r.GIDMap
	c.AddNamespace(specs.UserNamespace, "")
	if mountns {
		c.AddNamespace(specs.MountNamespace, "")
	}
	c.Steps = []spine.Step{step}
	return spine.Run(c)
}
