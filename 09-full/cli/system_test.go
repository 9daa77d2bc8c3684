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

// dfRow is one row of system df: TOTAL ACTIVE SIZE RECLAIMABLE.
func dfRow(t *testing.T, out, typ string) []string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + typ + ` +(\d+) +(\d+) +(\S+) +(\S+(?: \(\d+%\))?)$`).FindStringSubmatch(out)
	require.NotNil(t, m, "no %s row in:\n%s", typ, out)
	return m[1:]
}

// system df counts images, containers and volumes (named and anonymous,
// active while a container lists them) as docker's does; container prune and system prune remove what does not run, keep
// what does, say what went and how much; --volumes takes the anonymous
// volumes no container lists; -a the images no container was made from.
func TestSystemDfAndPrune(t *testing.T) {
	h := newHost(t)
	h.ok("import", h.rootf, "img")
	up := h.ok("run", "-d", "--name", "up", "--network", "none", "-v", "/keep", "-v", "dfnamed:/named", "img", "sleep", "1000")
	done := h.ok("run", "--name", "done", "--network", "none", "-v", "/drop", "img", "sh", "-c", "head -c 5000 /dev/zero >/big; echo x >/drop/f")
	assert.Empty(t, done)

	df := h.ok("system", "df")
	assert.Regexp(t, `^TYPE +TOTAL +ACTIVE +SIZE +RECLAIMABLE\n`, df)
	assert.Equal(t, []string{"1", "1"}, dfRow(t, df, "Images")[:2])
	assert.Equal(t, []string{"2", "1", "5kB", "5kB (100%)"}, dfRow(t, df, "Containers"))
	assert.Equal(t, []string{"3", "3", "2B", "0B (0%)"}, dfRow(t, df, "Local Volumes"), "a named volume counts too")
	assert.Equal(t, []string{"0", "0", "0B", "0B"}, dfRow(t, df, "Build Cache"))

	r := h.runIn("n\n", "system", "prune")
	require.Equal(t, 0, r.Code, r.String())
	assert.Contains(t, r.Stdout, "WARNING! This will remove:\n  - all stopped containers\n  - all dangling images\n")
	assert.Len(t, h.ids(), 2, "n is no")

	out := h.ok("system", "prune", "-f")
	doneID := h.ids()
	require.Len(t, doneID, 1)
	assert.Equal(t, up, doneID[0], "the running container stays")
	assert.Regexp(t, `^Deleted Containers:\n[0-9a-f]{64}\n\nTotal reclaimed space: 5kB$`, out)
	vols, _ := os.ReadDir(filepath.Join(h.data, "volumes"))
	assert.Len(t, vols, 3, "no --volumes: the volumes stay")

	out = h.ok("system", "prune", "-f", "--volumes")
	assert.Regexp(t, `^Deleted Volumes:\n[0-9a-f]{64}\n\nTotal reclaimed space: 2B$`, out)
	df = h.ok("system", "df")
	assert.Equal(t, []string{"2", "2", "0B", "0B"}, dfRow(t, df, "Local Volumes"), "up's volumes stay")

	out = h.ok("system", "prune", "-a", "-f")
	assert.NotContains(t, out, "untagged: img:latest", "up's image stays")
	assert.Equal(t, "up", h.ok("rm", "-f", "up"))
	out = h.ok("system", "prune", "-a", "-f", "--volumes")
	assert.Regexp(t, `^Deleted Volumes:\n[0-9a-f]{64}\n\nDeleted Images:\nuntagged: img:latest\ndeleted: sha256:[0-9a-f]{64}\n\nTotal reclaimed space: [0-9.]+MB$`, out)
	df = h.ok("system", "df")
	for _, typ := range []string{"Images", "Containers"} {
		assert.Equal(t, []string{"0", "0", "0B", "0B"}, dfRow(t, df, typ), typ)
	}
	assert.Equal(t, []string{"1", "0", "0B", "0B"}, dfRow(t, df, "Local Volumes"), "system prune --volumes takes anonymous volumes only (Docker 23+): the named one stays, unused")
	vols, _ = os.ReadDir(filepath.Join(h.data, "volumes"))
	require.Len(t, vols, 1)
	assert.Equal(t, "dfnamed", vols[0].Name())
}
