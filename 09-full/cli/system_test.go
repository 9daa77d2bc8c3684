//go:build linux

package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
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
	assert.Contains(t, r.Stdout, "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all dangling images\n")
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

// system prune removes the user-defined networks no container uses once
// its containers went, as docker's: one no container ever joined, and
// one whose only container was stopped (pruned first); one that a created
// container will join at start stays with it, and so do bridge, host and
// none.
func TestSystemPruneNetworks(t *testing.T) {
	h := newHost(t)
	h.ok("import", h.rootf, "img")
	h.newNet("img12b-idle", "img12b-b0")
	h.newNet("img12b-used", "img12b-b1")
	h.newNet("img12b-gone", "img12b-b2")
	h.ok("create", "--name", "img12b-c", "--network", "img12b-used", "img", "true")
	stopped := h.ok("run", "--name", "img12b-x", "--network", "img12b-gone", "img", "true")
	assert.Empty(t, stopped)
	x := h.inspect("img12b-x", "{{.Id}}")

	out := h.ok("system", "prune", "-f")
	assert.Regexp(t, `^Deleted Containers:\n`+x+`\n\nDeleted Networks:\n(img12b-gone\nimg12b-idle|img12b-idle\nimg12b-gone)\n\nTotal reclaimed space: `, out)
	assert.Equal(t, "bridge\nhost\nnone\nimg12b-used", h.ok("network", "ls", "--format", "{{.Name}}"))
	h.assertPrunedNet("img12b-idle", "img12b-b0")
	h.assertPrunedNet("img12b-gone", "img12b-b2")
	assert.Equal(t, "created", h.inspect("img12b-c", "{{.State.Status}}"))
	h.ok("start", "-a", "img12b-c") // its network is still there to join

	// Once no container names it, the next prune takes it.
	h.ok("rm", "img12b-c")
	out = h.ok("system", "prune", "-f")
	assert.Regexp(t, `^Deleted Networks:\nimg12b-used\n\nTotal reclaimed space: 0B$`, out)
	h.assertNetworkGone("img12b-b1")
}

// assertPrunedNet: assertNetworkGone's checks for one network while
// another's name server runs on: no bridge, no table, no file of its
// bridge, no name server of its own.
func (h *host) assertPrunedNet(name, bridge string) {
	t := h.t
	t.Helper()
	_, err := netlink.LinkByName(bridge)
	assert.Error(t, err, "bridge %s is left", bridge)
	out, _ := exec.Command("nft", "list", "tables").CombinedOutput()
	assert.NotContains(t, string(out), "berth-"+bridge+"\n", "table ip berth-%s is left", bridge)
	left, _ := filepath.Glob(filepath.Join(h.state, ".network", "*"+bridge+"*"))
	assert.Empty(t, left, "files of %s are left", bridge)
	for _, p := range dnsServers(h.state) {
		assert.False(t, strings.HasSuffix(strings.TrimSpace(p), "internal dns "+name), "the name server of %s is left: %s", name, p)
	}
}
