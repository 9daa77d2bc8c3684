//go:build linux

package oci_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInitWithoutCapabilities: a config.json whose process has no
// capabilities object (the hostile input: an older ctr's spec, a
// hand-written bundle) gives the init none, as runc does: every set
// empty, the bounding set too. Before the fix the init kept every
// capability of the root that ran berth-oci. An exec --process without
// capabilities gets the init's (none), and one that asks for any is
// refused: the bounding set is empty.
func TestInitWithoutCapabilities(t *testing.T) {
	r := newRT(t)
	b := r.bundle([]string{"sleep", "1000"}, func(s *specs.Spec) { s.Process.Capabilities = nil })
	r.ok("create", "--bundle", b, "nocaps1")
	r.ok("start", "nocaps1")
	t.Cleanup(func() { r.run("delete", "--force", "nocaps1") })
	pid := int(r.state("nocaps1")["pid"].(float64))
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	init := capLines(string(raw))
	for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		assert.Equal(t, "0000000000000000", init[k], "the init's %s, from a process without capabilities", k)
	}

	dir := t.TempDir()
	p := filepath.Join(dir, "nocaps.json")
	require.NoError(t, os.WriteFile(p, []byte(`{"args":["cat","/proc/self/status"],"user":{"uid":0,"gid":0},"cwd":"/"}`), 0o600))
	got := capLines(r.ok("exec", "--process", p, "nocaps1"))
	for _, k := range []string{"CapPrm", "CapEff", "CapBnd"} {
		assert.Equal(t, "0000000000000000", got[k], "%s of an exec into it", k)
	}
	p = filepath.Join(dir, "kill.json")
	require.NoError(t, os.WriteFile(p, []byte(`{"args":["true"],"cwd":"/","capabilities":{"bounding":["CAP_KILL"],"effective":["CAP_KILL"],"permitted":["CAP_KILL"]}}`), 0o600))
	res := r.run("exec", "--process", p, "nocaps1")
	assert.Equal(t, 125, res.Code, "%s", res)
	assert.Contains(t, res.Stderr, "capabilities.bounding has CAP_KILL, beyond the container's bounding set")
}
