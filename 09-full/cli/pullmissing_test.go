//go:build linux

package cli_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// run and create pull an image the store lacks, as docker's do: "Unable
// to find image 'NAME:TAG' locally" on stderr, then pull's lines there
// (stdout stays the container's), with the login config.json holds;
// --pull never refuses in Docker's words, --pull always pulls what the
// store has; a pull that fails is one line, exit 125, and keeps nothing.
func TestRunPullsMissing(t *testing.T) {
	h := newHost(t)
	reg := startAuthRegistry(t)
	cfgDir := filepath.Join(t.TempDir(), "docker")
	require.NoError(t, os.Mkdir(cfgDir, 0o700))
	h.env = append(h.env, "DOCKER_CONFIG="+cfgDir)

	ref := reg + "/img12b/app"
	h.ok("import", "--cmd", "sh", h.rootf, "base")
	h.ok("tag", "base", ref)
	h.runIn("secret\n", "login", "-u", "me", "--password-stdin", reg)
	h.ok("push", ref)
	h.ok("rmi", ref, "base")
	require.Empty(t, h.ok("images", "-q"))

	r := h.run("run", "--rm", "--network", "none", "--pull", "never", ref, "echo", "hi")
	assert.Equal(t, 125, r.Code, r.String())
	assert.Equal(t, "berth: No such image: "+ref+":latest\n", r.Stderr)
	r = h.run("run", "--rm", "--pull", "sometimes", ref)
	assert.Equal(t, 125, r.Code, r.String())
	assert.Contains(t, r.Stderr, `invalid pull option: 'sometimes': must be one of "always", "missing" or "never"`)

	// Without the login: the pull is refused, in one line after docker's
	// first, and nothing is kept (no image, no container).
	h.ok("logout", reg)
	before := blobs(t, h.data)
	r = h.run("run", "--rm", "--network", "none", ref, "echo", "hi")
	assert.Equal(t, 125, r.Code, r.String())
	lines := strings.Split(strings.TrimSuffix(r.Stderr, "\n"), "\n")
	require.Len(t, lines, 3, r.Stderr)
	assert.Equal(t, "Unable to find image '"+ref+":latest' locally", lines[0])
	assert.Equal(t, "latest: Pulling from img12b/app", lines[1])
	assert.Contains(t, lines[2], "wants a user name and password")
	assert.Empty(t, r.Stdout)
	assert.Empty(t, h.ok("images", "-q"), "a refused pull left an image")
	assert.Empty(t, h.ids(), "a refused pull left a container")
	assert.Equal(t, before, blobs(t, h.data), "a refused pull left blobs")

	// With it: create pulls, stdout is the id alone.
	h.runIn("secret\n", "login", "-u", "me", "--password-stdin", reg)
	r = h.run("create", "--network", "none", "--name", "img12b-c", ref, "echo", "created")
	require.Equal(t, 0, r.Code, r.String())
	assert.Regexp(t, `^[0-9a-f]{64}\n$`, r.Stdout)
	assert.Regexp(t, `^Unable to find image '`+regexp.QuoteMeta(ref)+`:latest' locally\nlatest: Pulling from img12b/app\n`+
		`[0-9a-f]{12}: Pulling fs layer\n[0-9a-f]{12}: Verifying Checksum\n[0-9a-f]{12}: Download complete\n[0-9a-f]{12}: Pull complete\n`+
		`Digest: sha256:[0-9a-f]{64}\nStatus: Downloaded newer image for `+regexp.QuoteMeta(ref)+`:latest\n$`, r.Stderr)
	assert.Equal(t, "created", h.ok("start", "-a", "img12b-c"))
	assert.NotEmpty(t, h.ok("images", "-q", ref), "the pulled image is in the store, by its name")

	// In the store: run pulls nothing; --pull always asks the registry.
	r = h.run("run", "--rm", "--network", "none", ref, "echo", "hi")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "hi\n", r.Stdout)
	assert.Empty(t, r.Stderr)
	r = h.run("run", "--rm", "--network", "none", "--pull", "always", ref, "echo", "hi")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "hi\n", r.Stdout)
	assert.Equal(t, "latest: Pulling from img12b/app\nDigest: "+digestOf(t, r.Stderr)+"\nStatus: Image is up to date for "+ref+":latest\n", r.Stderr)

	// run -q: the pull, without its lines.
	h.ok("rm", "img12b-c")
	h.ok("rmi", ref)
	r = h.run("run", "--rm", "-q", "--network", "none", ref, "echo", "quiet")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "quiet\n", r.Stdout)
	assert.Empty(t, r.Stderr)
}

// digestOf is the sha256 digest a pull printed.
func digestOf(t *testing.T, s string) string {
	m := regexp.MustCompile(`sha256:[0-9a-f]{64}`).FindString(s)
	require.NotEmpty(t, m, s)
	return m
}

// blobs lists the image store's blobs.
func blobs(t *testing.T, data string) []string {
	var out []string
	_ = filepath.WalkDir(filepath.Join(data, "images"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(p, "blobs") {
			out = append(out, p)
		}
		return nil
	})
	return out
}
