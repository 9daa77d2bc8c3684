//go:build linux

package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"berth/07-unionfs/layertest"
)

// A malformed line of an image's /etc/passwd or /etc/group is never read
// as id 0 (what github.com/moby/sys/user alone makes of a number it cannot
// parse, and what berth did for a gid): a lookup it could answer is
// refused, naming the line; a lookup it could not answer skips it.
func TestResolveUserRefusesMalformedEntries(t *testing.T) {
	passwd := "root:x:0:0:root:/root:/bin/sh\n" +
		"app:x:1000:staff:app:/home/app:/bin/sh\n" + // gid is a name
		"short:x:1001\n" + // no gid field: the library would give gid 0
		"neg:x:-1:100::/:/bin/sh\n" +
		"huge:x:4294967295:100::/:/bin/sh\n" +
		"plus:x:+7:100::/:/bin/sh\n" +
		"ok:x:1002:100:ok:/home/ok:/bin/sh\n" +
		"member:x:1003:100::/home/member:/bin/sh\n"
	group := "root:x:0:\n" +
		"users:x:100:\n" +
		"wheel:x:adm:member\n" + // gid is a name, and lists member
		"spaced:x: 7:\n" +
		"good:x:60:member,ok\n"
	layers := []string{layertest.Tree(t, map[string]string{"etc/passwd": passwd, "etc/group": group})}

	for _, c := range []struct{ spec, want string }{
		{"app", `/etc/passwd line 2 "app:x:1000:staff:app:/home/app:/bin/sh": gid "staff" is not a number from 0 to 2147483647: refused`},
		{"1000", `/etc/passwd line 2`}, // by uid: the same line would answer
		{"short", `/etc/passwd line 3 "short:x:1001": 3 fields, fewer than 4: refused`},
		{"1001", `/etc/passwd line 3`},
		{"neg", `uid "-1" is not a number`},
		{"huge", `uid "4294967295" is not a number`},
		{"plus", `uid "+7" is not a number`},
		{"ok:wheel", `/etc/group line 3 "wheel:x:adm:member": gid "adm" is not a number from 0 to 2147483647: refused`},
		{"member", `/etc/group line 3`}, // wheel lists member: a supplementary group the lookup reads
		{"ok:spaced", `gid " 7" is not a number`},
	} {
		u, err := ResolveUser(c.spec, layers)
		require.Error(t, err, "%s resolved to %+v", c.spec, u)
		assert.Contains(t, err.Error(), c.want, c.spec)
		assert.NotContains(t, err.Error(), "\n")
	}

	// What no malformed line can answer resolves, the malformed lines
	// skipped; a number with no well-formed entry needs none, as in docker.
	for _, c := range []struct {
		spec string
		want User
	}{
		{"ok", User{UID: 1002, GID: 100, AdditionalGids: []uint32{60}, Home: "/home/ok"}},
		{"ok:users", User{UID: 1002, GID: 100, Home: "/home/ok"}}, // a group given: no supplementary groups, as runc
		{"member:60", User{UID: 1003, GID: 60, Home: "/home/member"}},
		{"", User{Home: "/root"}},
		{"4242:4343", User{UID: 4242, GID: 4343}},
	} {
		u, err := ResolveUser(c.spec, layers)
		require.NoError(t, err, c.spec)
		assert.Equal(t, c.want, u, c.spec)
	}
}

// /etc/passwd is read as a container sees it: a symlink into a lower
// layer is followed there, and nothing but a regular file is read (a FIFO
// would block the runtime), up to a bound.
func TestResolveUserReadsOnlyARegularFile(t *testing.T) {
	lower := layertest.Tree(t, map[string]string{"usr/lib/passwd": "root:x:0:0:root:/root:/bin/sh\nlib:x:77:77::/var/lib:/bin/sh\n"})
	upper := layertest.Tree(t, nil)
	require.NoError(t, os.MkdirAll(filepath.Join(upper, "etc"), 0o755))
	require.NoError(t, os.Symlink("../usr/lib/passwd", filepath.Join(upper, "etc/passwd")))
	u, err := ResolveUser("lib", []string{upper, lower})
	require.NoError(t, err)
	assert.Equal(t, User{UID: 77, GID: 77, Home: "/var/lib"}, u, "the link leads into the lower layer")

	fifo := layertest.Tree(t, nil)
	require.NoError(t, os.MkdirAll(filepath.Join(fifo, "etc"), 0o755))
	require.NoError(t, unix.Mkfifo(filepath.Join(fifo, "etc/passwd"), 0o644))
	_, err = ResolveUser("app", []string{fifo})
	assert.ErrorContains(t, err, "/etc/passwd is not a regular file in the image: refused")

	big := layertest.Tree(t, map[string]string{"etc/passwd": strings.Repeat("x:x:1:1::/:/bin/sh\n", maxIDFile/18)})
	_, err = ResolveUser("app", []string{big})
	assert.ErrorContains(t, err, "/etc/passwd is over 4194304 bytes: refused")
}
