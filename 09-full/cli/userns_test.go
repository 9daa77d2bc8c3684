//go:build linux

package cli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// --userns as root: host is the default (no user namespace), said
// explicitly; keep-id is a rootless choice; anything else is refused.
func TestUserns(t *testing.T) {
	h := newHost(t)
	r := h.run(h.runArgs("--rm", "--userns=host", "sh", "-c", "cat /proc/self/uid_map; id -u")...)
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, []string{"0", "0", "4294967295", "0"}, strings.Fields(r.Stdout), "the host's user namespace: every id is itself")

	for _, tc := range []struct {
		flags []string
		msg   string
	}{
		{[]string{"--userns", "keep-id"}, "--userns=keep-id is for a user without root"},
		{[]string{"--userns", "auto"}, `--userns "auto": berth knows host and keep-id`},
		{[]string{"--userns", "ns:/proc/1/ns/user"}, "berth knows host and keep-id"},
		{[]string{"--userns", "host", "--uidmap", "0:100000:65536"}, "--userns=host: no user namespace of its own"},
	} {
		t.Run(strings.Join(tc.flags, " "), func(t *testing.T) {
			r := h.run(h.runArgs("", append(tc.flags, "echo", "ran")...)...)
			assert.Equal(t, 125, r.Code, r.String())
			assert.Contains(t, r.Stderr, tc.msg)
			assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.Stderr), "\n")+1, "one line: %q", r.Stderr)
			assert.Empty(t, r.Stdout)
			assert.Empty(t, h.ids(), "no container is made")
		})
	}
}

// --userns without root. keep-id: the caller's uid and gid are the same
// inside, the container's other ids are the caller's subordinate ones,
// and the command runs as the caller, so what it writes in a bind mount
// is the caller's on the host.
func TestRootlessUserns(t *testing.T) {
	a := testenv.NewAccount(t, "berth09k", true)
	bin := a.Berth(t)
	root := a.Rootfs(t)
	out := filepath.Join(a.Home, "out")
	mk := a.Run(t, nil, "mkdir", "-p", out)
	require.Equal(t, 0, mk.Code, mk.String())
	run := func(t *testing.T, args ...string) testenv.Result {
		t.Helper()
		return a.Run(t, nil, bin, append([]string{"run", "--rm", "--rootfs", root, "--network", "none"}, args...)...)
	}
	owner := func(t *testing.T, p string) (uint32, uint32) {
		t.Helper()
		st, err := os.Stat(p)
		require.NoError(t, err)
		s := st.Sys().(*syscall.Stat_t)
		return s.Uid, s.Gid
	}

	t.Run("keep-id: you are yourself inside", func(t *testing.T) {
		r := run(t, "--userns", "keep-id", "sh", "-c", "id -u; id -g; cat /proc/self/uid_map; grep CapEff /proc/self/status")
		require.Equal(t, 0, r.Code, r.String())
		t.Logf("berth run --userns keep-id sh -c 'id -u; id -g; cat /proc/self/uid_map; grep CapEff /proc/self/status':\n%s", r.Stdout)
		lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
		require.GreaterOrEqual(t, len(lines), 4, r.Stdout)
		assert.Equal(t, fmt.Sprint(a.UID), lines[0], "the command runs as you")
		assert.Equal(t, fmt.Sprint(a.GID), lines[1])
		maps := map[string]bool{}
		for _, l := range lines[2 : len(lines)-1] {
			maps[strings.Join(strings.Fields(l), " ")] = true
		}
		assert.True(t, maps[fmt.Sprintf("%d %d 1", a.UID, a.UID)], "your uid is itself inside: %v", maps)
		assert.True(t, maps[fmt.Sprintf("0 %d %d", a.SubUID, a.UID)], "the ids below it are subordinate ones: %v", maps)
		assert.Equal(t, "CapEff:\t0000000000000000", lines[len(lines)-1], "an ordinary user inside, as Docker's --user")
		// The init was the container's root, not you: what it made
		// (the /dev tmpfs) belongs to container 0.
		r = run(t, "--userns", "keep-id", "stat", "-c", "%u:%g %n", "/dev", "/dev/shm")
		require.Equal(t, 0, r.Code, r.String())
		assert.Equal(t, "0:0 /dev\n0:0 /dev/shm\n", r.Stdout)
	})

	t.Run("keep-id: a file written in a bind mount is yours", func(t *testing.T) {
		r := run(t, "--userns", "keep-id", "-v", out+":/out", "sh", "-c", "touch /out/mine; ls -ln /out/mine")
		require.Equal(t, 0, r.Code, r.String())
		t.Logf("inside: %s", r.Stdout)
		uid, gid := owner(t, filepath.Join(out, "mine"))
		assert.Equal(t, uint32(a.UID), uid, "owned by you on the host")
		assert.Equal(t, uint32(a.GID), gid)
		assert.Regexp(t, fmt.Sprintf(`^-\S+\s+1 %d\s+%d `, a.UID, a.GID), r.Stdout, "and inside, the same numbers")
	})

	t.Run("keep-id -u 0: the container's root is a subordinate id", func(t *testing.T) {
		r := run(t, "--userns", "keep-id", "-u", "0", "-v", out+":/out", "sh", "-c", "id -u; touch /out/root")
		require.Equal(t, 0, r.Code, r.String())
		assert.Equal(t, "0\n", r.Stdout)
		uid, gid := owner(t, filepath.Join(out, "root"))
		t.Logf("host: %d:%d", uid, gid)
		assert.Equal(t, a.SubUID, uid, "container 0 is the first subordinate uid")
		assert.Equal(t, a.SubGID, gid, "and gid")
	})

	t.Run("host: the default, you are root inside", func(t *testing.T) {
		r := run(t, "--userns", "host", "-v", out+":/out", "sh", "-c", "id -u; cat /proc/self/uid_map; touch /out/host")
		require.Equal(t, 0, r.Code, r.String())
		assert.Equal(t, []string{"0", "0", fmt.Sprint(a.UID), "1"}, strings.Fields(r.Stdout))
		uid, _ := owner(t, filepath.Join(out, "host"))
		assert.Equal(t, uint32(a.UID), uid)
	})

	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			flags []string
			msg   string
		}{
			{[]string{"--userns", "keep-id", "--map-subids"}, "--userns=keep-id makes its own maps"},
			{[]string{"--userns", "private"}, `--userns "private": berth knows host and keep-id`},
			{[]string{"--userns", "host", "--map-subids"}, "--userns=host: no user namespace of its own"},
		} {
			r := run(t, append(tc.flags, "true")...)
			assert.Equal(t, 125, r.Code, r.String())
			assert.Contains(t, r.Stderr, tc.msg)
			assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.Stderr), "\n")+1, "one line: %q", r.Stderr)
		}
	})
}

// A rootless container of an image whose layer holds files of the
// user's subordinate ids (overlay's work/work made by a container root
// that is one, with keep-id; a chown inside, with either) is removed by
// rm and by --rm: the record, the layer and its short links all go.
// keep-id runs first: its root, a subordinate id, once made the store's
// l/ too, and no later container's links could be made or removed as
// the user (--userns=host: a container of the user's id alone, whose
// chown to a subordinate id fails, its links removed as the user).
func TestRootlessRemoveSubIDLayer(t *testing.T) {
	a := testenv.NewAccount(t, "berth09r", true)
	bin := a.Berth(t)
	run := func(args ...string) testenv.Result {
		t.Helper()
		return a.Run(t, nil, bin, args...)
	}
	r := run("import", a.Rootfs(t), "base")
	require.Equal(t, 0, r.Code, r.String())
	layers := filepath.Join(a.Home, ".local", "share", "berth", "layers")
	left := func(t *testing.T) []string {
		t.Helper()
		var names []string
		for _, d := range []string{"containers", "l"} {
			entries, err := os.ReadDir(filepath.Join(layers, d))
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			for _, e := range entries {
				names = append(names, filepath.Join(d, e.Name()))
			}
		}
		return names
	}
	for _, mode := range [][]string{{"--userns", "keep-id", "-u", "0"}, {"--map-subids"}, {"--userns", "host"}} {
		t.Run(strings.Join(mode, " ")+" rm", func(t *testing.T) {
			name := "subids" + strings.Join(mode, "")
			args := append([]string{"run", "--name", name, "--network", "none"}, mode...)
			r := run(append(args, "base", "sh", "-c", "mkdir /d && touch /d/f && chown -R 5:5 /d")...)
			if mode[len(mode)-1] == "host" {
				require.Equal(t, 1, r.Code, "no id 5 without subordinate ids: %s", r)
			} else {
				require.Equal(t, 0, r.Code, r.String())
			}
			require.NotEmpty(t, left(t), "the container has a layer")
			r = run("rm", name)
			require.Equal(t, 0, r.Code, r.String())
			assert.Empty(t, strings.Fields(run("ps", "-aq").Stdout), "the record is gone")
			assert.Empty(t, left(t), "nothing of its layer is left under %s", layers)
		})
		t.Run(strings.Join(mode, " ")+" --rm", func(t *testing.T) {
			args := append([]string{"run", "--rm", "--network", "none"}, mode...)
			r := run(append(args, "base", "sh", "-c", "mkdir /d && touch /d/f && chown -R 5:5 /d")...)
			require.Contains(t, []int{0, 1}, r.Code, r.String())
			require.NotContains(t, r.Stderr, "berth:", "berth itself says nothing")
			assert.Empty(t, strings.Fields(run("ps", "-aq").Stdout), "the record is gone")
			assert.Empty(t, left(t), "nothing of its layer is left under %s", layers)
		})
	}
}
