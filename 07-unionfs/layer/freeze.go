//go:build linux

package layer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"berth/01-uts/spine"
	"berth/06-cgroups/cgroup"
)

// A commit reads the container layer while, if the container runs, the
// container writes it: a file can be listed as a file and be a symlink to
// a host file by the time it is read (CVE-2018-15664 was this race in
// docker cp). Reading through handles (tree.go) makes the race harmless:
// nothing is followed, and an inode that changed since it was listed is
// refused. Freezing the container makes it go away: docker commit pauses
// the container by default, with stage 06's freezer, and so does berth;
// --pause=false reads a running container as it goes, for whoever asks.

// pauseForCommit freezes the processes of container id if it is running,
// and returns what thaws them again (nothing to do when it was not
// running, or was paused already by its user: it stays so). ctx ends the
// wait for the freeze; the thaw waits whatever happens to ctx.
func pauseForCommit(ctx context.Context, stateRoot, id string) (resume func() error, err error) {
	none := func() error { return nil }
	live, err := spine.Live(stateRoot)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(live, id) {
		return none, nil // stopped: nothing writes its layer
	}
	_, steps, _, err := spine.ReadState(filepath.Join(stateRoot, id))
	if err != nil {
		return nil, fmt.Errorf("container %s is running: %w", id, err)
	}
	hasGroup := slices.ContainsFunc(steps, func(s spine.Step) bool { return s.Name() == "cgroup" })
	if !hasGroup {
		return nil, fmt.Errorf("container %s is running and has no cgroup to freeze while it is committed (rootless): stop it first, or commit with --pause=false", id)
	}
	mode, err := cgroup.DetectMode()
	if err != nil {
		return nil, err
	}
	g, err := cgroup.Load(mode, cgroup.GroupPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return none, nil // it stopped meanwhile
	}
	if err != nil {
		return nil, err
	}
	frozen, err := g.Frozen()
	if err != nil {
		return nil, fmt.Errorf("read the freezer state of %s: %w", g.Path(), err)
	}
	if frozen {
		return none, nil
	}
	if err := g.Freeze(ctx); err != nil {
		_ = g.Thaw(context.Background()) // half-frozen is worse than not frozen: the error says it all
		return nil, fmt.Errorf("pause %s for the commit: %w", id, err)
	}
	return func() error {
		if err := g.Thaw(context.Background()); err != nil {
			return fmt.Errorf("resume %s after the commit: %w", id, err)
		}
		return nil
	}, nil
}
