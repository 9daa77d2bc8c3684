//go:build linux

package layer_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/06-cgroups/cgroup"
	"berth/internal/testenv"
)

// A container that swaps its own directory and file for symlinks to a
// host directory and file, as fast as it can, while it is committed (the
// CVE-2018-15664 race). With --pause=false commit reads it as it goes:
// only reading through handles (no symlink followed, the inode checked
// against the listing) keeps the host's file out, and a commit that met a
// swap refuses. By default commit freezes the container: every commit
// succeeds, and the container runs on after it.
func TestCommitRacingContainer(t *testing.T) {
	e := testenv.NewStage(t, "07-unionfs")
	host := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(host, "f"), []byte("HOST SECRET\n"), 0o644))
	// Renames, each atomic: /d is in turn the container's directory,
	// nothing, a symlink to the host's directory, nothing; /f the same.
	// Each state is held a while, the gaps between them are short.
	// What they are renamed from and the files in /zz are listed after
	// /d/f and archived after it: the swap has time to happen between the
	// listing and the reading, and an old commit got that far.
	swap := fmt.Sprintf(`mkdir /zzz /zzz/d; echo own > /zzz/d/f; ln -s %[1]s /zzz/dl
echo own > /zzz/f; ln -s %[1]s/f /zzz/fl
mkdir /zz; i=0; while [ $i -lt 3000 ]; do : > /zz/$i; i=$((i+1)); done; i=0
hold() { j=0; while [ $j -lt 300 ]; do j=$((j+1)); done; }
while :; do
  mv /zzz/d /d; mv /zzz/f /f; hold; mv /d /zzz/d; mv /f /zzz/f
  mv /zzz/dl /d; mv /zzz/fl /f; hold; mv /d /zzz/dl; mv /f /zzz/fl
  i=$((i+1)); echo $i > /zzz/count
done`, host)
	b := testenv.Start(t, e.Vars, e.Bin, "run", "--net", "none", "--id", "race", "sh", "-c", swap)
	testenv.ContainerPid(t, testenv.StateRoot(e.Vars), "race")
	count := filepath.Join(e.Data, "layers/containers/race/diff/zzz/count")
	require.Eventually(t, func() bool { _, err := os.Stat(count); return err == nil }, 30*time.Second, 10*time.Millisecond)

	// 20 commits: the race is a chance, not a certainty; the certain
	// check of the defence is TestCommitNeverFollowsASwappedPath's.
	const commits = 20
	refused := 0
	for i := 0; i < commits; i++ {
		r := e.Run("commit", "--pause=false", "race", "-")
		assert.NotContains(t, r.Stdout, "HOST SECRET", "commit %d archived the host's file", i)
		if r.Code != 0 {
			refused++
			assert.Regexp(t, `^07-unionfs: commit race: .*(changed while it was being committed|shrank while it was being read|a symlink or not a directory|no such file or directory)`, r.Stderr)
		}
	}
	t.Logf("%d of %d commits with --pause=false met a swap and refused", refused, commits)

	mode, err := cgroup.DetectMode()
	require.NoError(t, err)
	g, err := cgroup.Load(mode, cgroup.GroupPath("race"))
	require.NoError(t, err)
	for i := 0; i < 5; i++ {
		r := e.Run("commit", "race", "-")
		require.Equal(t, 0, r.Code, "a paused commit always succeeds: %s", r.Stderr)
		assert.NotContains(t, r.Stdout, "HOST SECRET")
		assert.True(t, strings.Contains(r.Stdout, "count"), "the layer is in the tarball")
		frozen, err := g.Frozen()
		require.NoError(t, err)
		assert.False(t, frozen, "the container is thawed after the commit")
	}
	before := string(must(os.ReadFile(count)))
	assert.Eventually(t, func() bool { return string(must(os.ReadFile(count))) != before }, 10*time.Second, 10*time.Millisecond, "the container runs on")

	// A container its user paused stays paused.
	e.OK("pause", "race")
	e.OK("commit", "race", filepath.Join(t.TempDir(), "c.tar"))
	frozen, err := g.Frozen()
	require.NoError(t, err)
	assert.True(t, frozen, "paused by its user, it stays paused")
	e.OK("resume", "race")

	require.NoError(t, b.Cmd.Process.Kill())
	b.Wait(t)
	e.OK("rm", "race")
}
