//go:build linux

package cli_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// berth build pulls a FROM image the store lacks, as docker's classic
// builder does, with docker's lines under the step, and with the login
// that config.json holds for the registry; without it, the pull is
// refused and the build fails at its FROM.
func TestBuildPullsFrom(t *testing.T) {
	h := newHost(t)
	reg := startAuthRegistry(t)
	cfgDir := filepath.Join(t.TempDir(), "docker")
	require.NoError(t, os.Mkdir(cfgDir, 0o700))
	h.env = append(h.env, "DOCKER_CONFIG="+cfgDir)

	ref := reg + "/base/img"
	h.ok("import", "--cmd", "sh", h.rootf, "base")
	h.ok("tag", "base", ref)
	h.runIn("secret\n", "login", "-u", "me", "--password-stdin", reg)
	h.ok("push", ref)
	h.ok("rmi", ref, "base")
	ctx := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM "+ref+"\nCMD [\"echo\", \"built\"]\n"), 0o644))

	h.ok("logout", reg)
	r := h.run("build", "-t", "app", ctx)
	assert.Equal(t, 1, r.Code, r.String())
	assert.Contains(t, r.Stderr, "FROM "+ref+": ")
	assert.Contains(t, r.Stderr, "wants a user name and password")
	assert.Empty(t, h.ok("images", "-q"), "a refused pull left an image")

	h.runIn("secret\n", "login", "-u", "me", "--password-stdin", reg)
	out := h.ok("build", "-t", "app", ctx)
	assert.Regexp(t, `^Step 1/2 : FROM `+regexp.QuoteMeta(ref)+`\nlatest: Pulling from base/img\n`+
		`([0-9a-f]{12}): Pulling fs layer\n[0-9a-f]{12}: Verifying Checksum\n[0-9a-f]{12}: Download complete\n[0-9a-f]{12}: Pull complete\n`+
		`Digest: sha256:[0-9a-f]{64}\nStatus: Downloaded newer image for `+regexp.QuoteMeta(ref)+`:latest\n ---> [0-9a-f]{12}\n`+
		`Step 2/2 : CMD`, out)
	assert.Equal(t, "built", h.ok("run", "--rm", "--network", "none", "app"))
	assert.NotEmpty(t, h.ok("images", "-q", ref), "the FROM image is in the store, by its name")

	// In the store now: the next build pulls nothing.
	out = h.ok("build", "-t", "app", ctx)
	assert.NotContains(t, out, "Pulling from")
}
