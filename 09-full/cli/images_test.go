//go:build linux

package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Stage 08's image verbs under Docker's names, on berth's own roots:
// import, tag, images, history, image inspect, build (its RUN a container
// of stage 08's run, mounted in berth), save and load, rmi; a container
// of a built image serves what the build put in it.
func TestImageVerbs(t *testing.T) {
	h := newHost(t)
	id := h.ok("import", h.rootf, "base")
	assert.Regexp(t, `^sha256:[0-9a-f]{64}$`, id)
	h.ok("tag", "base", "base:v1")
	images := h.ok("images")
	assert.Regexp(t, `(?m)^base +latest +`+id[7:19], images)
	assert.Regexp(t, `(?m)^base +v1 +`+id[7:19], images)
	assert.Equal(t, images, h.ok("image", "ls"), "docker's image ls")

	ctx := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(ctx, "test.html"), []byte("<h1>built</h1>\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(
		"FROM base:v1\nRUN mkdir /www && echo ran > /www/run.txt\nCOPY test.html /www/\nCMD [\"cat\", \"/www/run.txt\", \"/www/test.html\"]\n"), 0o644))
	out := h.ok("build", "-t", "web:1", ctx)
	assert.Contains(t, out, "Step 2/4 : RUN mkdir /www")
	assert.Contains(t, out, "Successfully tagged web:1")
	assert.Equal(t, "ran\n<h1>built</h1>", h.ok("run", "--rm", "--network", "none", "web:1"))
	// The RUN container left nothing: no state, no container layer but
	// none at all (web:1 runs with --rm).
	left, _ := os.ReadDir(filepath.Join(h.data, "layers", "containers"))
	assert.Empty(t, left, "container layers left by the build")

	hist := h.ok("history", "web:1")
	assert.Contains(t, hist, "/bin/sh -c mkdir /www && echo ran")
	var insp []struct {
		ID       string `json:"Id"`
		RepoTags []string
	}
	require.NoError(t, json.Unmarshal([]byte(h.ok("image", "inspect", "web:1")), &insp))
	require.Len(t, insp, 1)
	assert.Equal(t, []string{"web:1"}, insp[0].RepoTags)

	// save, rmi, load: the image comes back with its id.
	webID := h.ok("images", "-q", "web:1")
	assert.Equal(t, webID, insp[0].ID[7:19])
	tarball := filepath.Join(t.TempDir(), "web.tar")
	h.ok("save", "-o", tarball, "web:1")
	rmi := h.ok("rmi", "web:1")
	assert.Contains(t, rmi, "Untagged: web:1")
	assert.Empty(t, h.ok("images", "-q", "web:1"))
	assert.Contains(t, h.ok("load", "-i", tarball), "Loaded image: web:1")
	assert.Equal(t, webID, h.ok("images", "-q", "web:1"))
	assert.Equal(t, "ran\n<h1>built</h1>", h.ok("run", "--rm", "--network", "none", "web:1"))

	// rmi -f takes the image of a container away; the container still
	// starts: its layers stay while it stands on them.
	h.ok("create", "--network", "none", "--name", "kept", "web:1")
	h.ok("rmi", "-f", "web:1")
	assert.Empty(t, h.ok("images", "-q", "web:1"))
	assert.Equal(t, "ran\n<h1>built</h1>", h.ok("start", "-a", "kept"))
}

// image prune removes the dangling images (an old build whose name went
// to a new one), keeps a tagged image's build steps; -a removes every
// image no container was made from, and keeps the one a container uses.
func TestImagePrune(t *testing.T) {
	h := newHost(t)
	h.ok("import", h.rootf, "base")
	ctx := t.TempDir()
	build := func(content string) string {
		require.NoError(t, os.WriteFile(filepath.Join(ctx, "f"), []byte(content), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM base\nCOPY f /f\nCMD [\"cat\", \"/f\"]\n"), 0o644))
		h.ok("build", "-t", "app", ctx)
		return h.ok("images", "-q", "app")
	}
	old := build("one")
	cur := build("two")
	require.NotEqual(t, old, cur)
	r := h.runIn("n\n", "image", "prune")
	require.Equal(t, 0, r.Code, r.String())
	assert.Contains(t, r.Stdout, "WARNING! This will remove all dangling images.")
	assert.NotContains(t, r.Stdout, "deleted:")
	assert.Contains(t, h.ok("images", "-a", "-q"), old, "n is no")

	out := h.ok("image", "prune", "-f")
	// The old build's result and its COPY step go (2 images); the current
	// one, its steps and base stay.
	assert.Equal(t, 2, strings.Count(out, "deleted: sha256:"), out)
	assert.Contains(t, out, "deleted: sha256:"+old)
	assert.Regexp(t, `Total reclaimed space: [0-9.]+k?B`, out)
	all := h.ok("images", "-a", "-q")
	assert.NotContains(t, all, old)
	assert.Contains(t, all, cur)
	assert.Equal(t, "Total reclaimed space: 0B", h.ok("image", "prune", "-f"), "nothing dangling left")

	// -a: a container of app keeps app (and base below it); nothing else
	// is named, so only the unused intermediate images could go: none.
	h.ok("create", "--network", "none", "--name", "c", "app")
	r = h.run("rmi", "app")
	assert.Equal(t, 1, r.Code, "rmi of a container's image: %s", r)
	assert.Contains(t, r.Stderr, `conflict: unable to remove repository reference "app" (must force) - container `)
	h.ok("tag", "app", "app:other")
	assert.Equal(t, "Untagged: app:other", h.ok("rmi", "app:other"), "a name that is not the last one goes")
	out = h.ok("image", "prune", "-a", "-f")
	assert.NotContains(t, out, "untagged: app:latest")
	assert.Contains(t, h.ok("images", "-q", "app"), cur)
	h.ok("rm", "c")
	out = h.ok("image", "prune", "-a", "-f")
	assert.Contains(t, out, "untagged: app:latest")
	assert.Contains(t, out, "untagged: base:latest")
	assert.Empty(t, h.ok("images", "-a", "-q"))
	blobs, _ := os.ReadDir(filepath.Join(h.data, "images", "blobs", "sha256"))
	assert.Empty(t, blobs, "image prune -a left blobs")
}

// image inspect prints Docker's shape (moby's image.InspectResponse): an
// array, Id the config's digest, every name in RepoTags, the config under
// Docker's names, RootFS's diff ids, a built image's Parent; --format
// runs on the JSON's names; berth inspect falls back to an image when no
// container has the name, unless --type says otherwise.
func TestImageInspectDockerShape(t *testing.T) {
	h := newHost(t)
	id := h.ok("import", "--cmd", "sh", h.rootf, "base")
	h.ok("tag", "base", "base:v1")
	ctx := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(
		"FROM base\nENV GREETING=hi\nWORKDIR /srv\nLABEL a=b\nCMD [\"cat\", \"/etc/hostname\"]\n"), 0o644))
	h.ok("build", "-t", "app", ctx)

	var base []map[string]any
	require.NoError(t, json.Unmarshal([]byte(h.ok("image", "inspect", "base", "app")), &base))
	require.Len(t, base, 2)
	assert.Equal(t, id, base[0]["Id"])
	assert.ElementsMatch(t, []any{"base:latest", "base:v1"}, base[0]["RepoTags"])
	for _, k := range []string{"RepoDigests", "Created", "Config", "Architecture", "Os", "Size", "RootFS", "Metadata"} {
		assert.Contains(t, base[0], k, "docker image inspect has %s", k)
	}
	assert.Equal(t, "layers", base[0]["RootFS"].(map[string]any)["Type"])
	assert.Len(t, base[0]["RootFS"].(map[string]any)["Layers"], 1)
	assert.Equal(t, "linux", base[0]["Os"])
	assert.NotContains(t, base[0], "Parent", "an imported image has none")
	// Parent: the image of the step before, as docker's classic builder
	// sets it; the chain ends at base.
	parents := []string{}
	for p := base[1]["Parent"].(string); p != "" && len(parents) < 10; p = h.ok("image", "inspect", "-f", `{{if .Parent}}{{.Parent}}{{end}}`, p) {
		parents = append(parents, p)
	}
	assert.Len(t, parents, 4, "ENV, WORKDIR, LABEL, then base")
	assert.Equal(t, id, parents[len(parents)-1])

	assert.Equal(t, `{"Cmd":["cat","/etc/hostname"],"Env":["GREETING=hi"],"Labels":{"a":"b"},"WorkingDir":"/srv"}`,
		h.ok("image", "inspect", "--format", "{{json .Config}}", "app"))
	assert.Equal(t, "base:v1 "+id, h.ok("image", "inspect", "-f", "{{index .RepoTags 1}} {{.Id}}", "base"))

	// berth inspect: an image when no container has the name.
	assert.Equal(t, id, h.ok("inspect", "--format", "{{.Id}}", "base"))
	h.ok("create", "--network", "none", "--name", "base", "app")
	assert.Regexp(t, `^[0-9a-f]{64}$`, h.ok("inspect", "--format", "{{.Id}}", "base"), "a container wins")
	assert.Equal(t, id, h.ok("inspect", "--type", "image", "--format", "{{.Id}}", "base"))
	r := h.run("inspect", "--type", "container", "app")
	assert.Equal(t, 1, r.Code)
	assert.Equal(t, "[]", strings.TrimSpace(r.Stdout))
	assert.Contains(t, r.Stderr, "No such container: app")
	r = h.run("inspect", "nothing")
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Stderr, "No such object: nothing")
	r = h.run("image", "inspect", "nothing")
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Stderr, "No such image: nothing")
	assert.Equal(t, 125, h.run("inspect", "--type", "volume", "base").Code)
}
