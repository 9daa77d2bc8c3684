//go:build exercise && linux

package exercises

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// docs/08-build.md's exercises: 9 and 10.

// buildIn builds a Dockerfile given as lines in the context dir, with
// more arguments (--build-arg ...) before the context.
func buildIn(t *testing.T, env []string, b, dir string, extra []string, lines ...string) testenv.Result {
	t.Helper()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(strings.Join(lines, "\n")+"\n"), 0o644))
	return testenv.Run(t, env, b, append(append([]string{"build"}, extra...), dir)...)
}

// runKeys are the cache keys of the data root's RUN steps, as JSON.
func runKeys(t *testing.T, env []string) map[string]any {
	t.Helper()
	dir := filepath.Join(dataRootOf(env), "images", "buildcache")
	names, err := os.ReadDir(dir)
	require.NoError(t, err)
	out := map[string]any{}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n.Name()))
		require.NoError(t, err)
		_, key, _ := strings.Cut(string(b), "\n")
		var k map[string]any
		require.NoError(t, json.Unmarshal([]byte(key), &k), "%s: the key after the image id", n.Name())
		if k["cmd"] == "RUN" {
			out[n.Name()] = k
		}
	}
	return out
}

// 08-9: a RUN is cached on what it is, not on what it does; a build arg
// it sees is part of its key.
func TestExercise08_9(t *testing.T) {
	a := answer(t, "08-9", 2)
	b := bin(t, "08-image")
	env := testenv.StateEnv(t)
	importTree(t, env, b, "", "busybox")
	c := t.TempDir()
	built := func(extra []string, lines ...string) string {
		r := buildIn(t, env, b, c, append([]string{"-t", "stamp"}, extra...), lines...)
		require.Equal(t, 0, r.Code, r.String())
		r = testenv.Run(t, env, b, "run", "--net", "none", "--rm", "--image", "stamp", "cat", "/built-at")
		require.Equal(t, 0, r.Code, r.String())
		return strings.TrimSpace(r.Stdout)
	}
	// A learner's builds are seconds apart, the check's are not: a uuid
	// where the exercise has date (busybox's has no %N).
	plain := []string{"FROM busybox", "RUN cat /proc/sys/kernel/random/uuid > /built-at"}
	first, second := built(nil, plain...), built(nil, plain...)
	again := "yes"
	if first == second {
		again = "no"
	}

	bust := []string{"FROM busybox", "ARG CACHEBUST", "RUN cat /proc/sys/kernel/random/uuid > /built-at"}
	before := runKeys(t, env)
	one := built([]string{"--build-arg", "CACHEBUST=1"}, bust...)
	two := built([]string{"--build-arg", "CACHEBUST=2"}, bust...)
	require.NotEqual(t, one, two, "a new CACHEBUST runs the step again")
	var keys []any
	for name, k := range runKeys(t, env) {
		if before[name] == nil {
			keys = append(keys, k)
		}
	}
	require.Len(t, keys, 2, "one RUN key per CACHEBUST")
	differ := map[string]bool{}
	leafDiff(keys[0], keys[1], "", differ)
	var fields []string
	for f := range differ {
		fields = append(fields, f)
	}
	sort.Strings(fields)

	assert.True(t, same(a[0], again), "line 1: does the second build, the same Dockerfile, run date again (yes or no)? %s, not %q", again, a[0])
	assert.True(t, same(a[1], strings.Join(fields, " ")), "line 2: the field of the RUN step's cache key that differs between CACHEBUST=1 and CACHEBUST=2: %s, not %q", strings.Join(fields, " "), a[1])
}

// deleted lists the ids rmi or prune printed as Deleted: sha256:<id>,
// shortened.
func deleted(out string) map[string]bool {
	ids := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		if id, ok := strings.CutPrefix(line, "Deleted: sha256:"); ok && len(id) >= 12 {
			ids[id[:12]] = true
		}
	}
	return ids
}

// 08-10: rmi removes the unnamed parents that nothing else is built on.
func TestExercise08_10(t *testing.T) {
	b := bin(t, "08-image")
	env := testenv.StateEnv(t)
	importTree(t, env, b, "", "busybox")
	step := func(lines ...string) map[string]bool {
		t.Helper()
		r := build(t, env, b, "", lines...)
		require.Equal(t, 0, r.Code, r.String())
		return noneIDs(t, env, b)
	}
	// envA is the ENV A=1 step two images stand on; envB the ENV B=2 step
	// app2 alone stands on.
	withA := step("FROM busybox", "ENV A=1")
	require.Len(t, withA, 1, "an unnamed image: the ENV A=1 step")
	withB := step("FROM busybox", "ENV A=1", "ENV B=2")
	var envA, envB string
	for id := range withA {
		envA = id
	}
	for id := range withB {
		if id != envA {
			envB = id
		}
	}
	require.NotEmpty(t, envB, "an unnamed image: the ENV B=2 step")
	r := build(t, env, b, "app", "FROM busybox", "ENV A=1", "RUN echo a > /a")
	require.Equal(t, 0, r.Code, r.String())
	r = build(t, env, b, "app2", "FROM busybox", "ENV A=1", "ENV B=2", "RUN echo b > /b")
	require.Equal(t, 0, r.Code, r.String())
	// A failed build's steps: dangling, not rmi's to remove.
	r = build(t, env, b, "", "FROM busybox", "ENV C=3", "RUN exit 3")
	require.Equal(t, 3, r.Code, r.String())
	failed := noneIDs(t, env, b)
	delete(failed, envA)
	delete(failed, envB)
	require.Len(t, failed, 1, "the failed build's ENV C=3 step")
	app, app2 := inspect(t, env, b, "app").ID[7:19], inspect(t, env, b, "app2").ID[7:19]

	r = testenv.Run(t, env, b, "rmi", "app")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, []string{app}, keys(deleted(r.Stdout)), "rmi app deletes app, and not ENV A=1's image, which app2 stands on:\n%s", r.Stdout)

	r = testenv.Run(t, env, b, "rmi", "app2")
	require.Equal(t, 0, r.Code, r.String())
	want := map[string]bool{app2: true, envA: true, envB: true}
	assert.Equal(t, keys(want), keys(deleted(r.Stdout)), "rmi app2 deletes app2 and its two unnamed parents, ENV B=2's and ENV A=1's, each in a Deleted: line:\n%s", r.Stdout)
	assert.Equal(t, keys(failed), keys(noneIDs(t, env, b)), "the failed build's dangling step stays (prune's, not rmi's)")
	inspect(t, env, b, "busybox") // a named parent stays
	r = testenv.Run(t, env, b, "run", "--net", "none", "--rm", "--image", "busybox", "true")
	assert.Equal(t, 0, r.Code, "busybox still runs: %s", r)
}
