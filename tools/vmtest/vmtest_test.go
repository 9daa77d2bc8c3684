package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The archive is read back by an independent cpio (busybox's): names,
// types, modes, owners and sizes as the kernel's unpacker would see them.
func TestArchiveReadsBack(t *testing.T) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("skipped: no busybox to read the archive back (apt-get install busybox-static)")
	}
	src := t.TempDir()
	require.NoError(t, os.Chmod(src, 0o700))
	require.NoError(t, os.MkdirAll(filepath.Join(src, "sub"), 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(src, "sub", "f"), []byte("hello"), 0o640))
	require.NoError(t, os.Symlink("sub/f", filepath.Join(src, "link")))

	var buf bytes.Buffer
	a := newArchive(&buf)
	a.bytes("init", 0o755, []byte("#!/bin/sh\n"))
	a.symlink("bin/sh", "/bin/busybox")
	a.chardev("dev/console", 0o600, 5, 1)
	a.dir("tmp", 0o1777, 0, 0)
	a.tree("var/x", src)
	a.bytes("odd", 0o644, []byte("abc")) // a size that needs padding, then more entries
	a.bytes("deep/er/file", 0o600, nil)
	require.NoError(t, a.close())
	assert.EqualValues(t, buf.Len(), a.n)
	assert.Zero(t, buf.Len()%4, "entries are 4-byte aligned")

	cmd := exec.Command(bb, "cpio", "-tv")
	cmd.Stdin = bytes.NewReader(buf.Bytes())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue // "N blocks"
		}
		entry := f[0] + " " + f[1] + " " + f[5]
		if f[0][0] == '-' {
			entry += " " + f[2]
		}
		if len(f) == 8 && f[6] == "->" {
			entry += " -> " + f[7]
		}
		got = append(got, entry)
	}
	ug := fmt.Sprintf("%d/%d", os.Getuid(), os.Getgid()) // tree keeps the owners
	want := []string{
		"-rwxr-xr-x 0/0 init 10",
		"drwxr-xr-x 0/0 bin",
		"lrwxrwxrwx 0/0 bin/sh -> /bin/busybox",
		"drwxr-xr-x 0/0 dev",
		"crw------- 0/0 dev/console",
		"drwxrwxrwt 0/0 tmp",
		"drwxr-xr-x 0/0 var",
		"drwx------ " + ug + " var/x",
		"lrwxrwxrwx 0/0 var/x/link -> sub/f",
		"drwxr-x--- " + ug + " var/x/sub",
		"-rw-r----- " + ug + " var/x/sub/f 5",
		"-rw-r--r-- 0/0 odd 3",
		"drwxr-xr-x 0/0 deep",
		"drwxr-xr-x 0/0 deep/er",
		"-rw------- 0/0 deep/er/file 0",
	}
	assert.Equal(t, want, got)
}

func writeModules(t *testing.T, dep, alias string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "modules.alias"), []byte(alias), 0o644))
	return dir
}

func TestLoadOrder(t *testing.T) {
	dir := writeModules(t, `kernel/net/bridge/br_netfilter.ko: kernel/net/bridge/bridge.ko kernel/net/802/stp.ko kernel/net/llc/llc.ko
kernel/net/bridge/bridge.ko: kernel/net/802/stp.ko kernel/net/llc/llc.ko
kernel/net/802/stp.ko: kernel/net/llc/llc.ko
kernel/net/llc/llc.ko:
kernel/fs/overlayfs/overlay.ko:
kernel/net/netfilter/nf_tables.ko: kernel/net/netfilter/nfnetlink.ko kernel/lib/libcrc32c.ko
kernel/net/netfilter/nfnetlink.ko:
kernel/lib/libcrc32c.ko:
kernel/crypto/crc32c_generic.ko:
kernel/arch/x86/crypto/crc32c-intel.ko:
`, "alias fs-overlay overlay\nalias crc32c crc32c_intel\nalias crc32c crc32c_generic\n")
	m, err := readModIndex(dir)
	require.NoError(t, err)

	order, err := m.loadOrder([]string{"fs-overlay", "br_netfilter", "bridge"})
	require.NoError(t, err)
	assert.Equal(t, []string{
		"kernel/fs/overlayfs/overlay.ko",
		"kernel/net/llc/llc.ko", "kernel/net/802/stp.ko", "kernel/net/bridge/bridge.ko",
		"kernel/net/bridge/br_netfilter.ko",
	}, order, "every dependency first, each once")

	n, ok := m.resolve("crc32c")
	assert.True(t, ok)
	assert.Equal(t, "crc32c_generic", n, "of several providers, the generic one")
	_, err = m.loadOrder([]string{"nope"})
	assert.ErrorContains(t, err, "module nope not in modules.dep")
	assert.Equal(t, []string{"libcrc32c", "nf_tables", "nfnetlink"}, m.under([]string{"kernel/net/netfilter", "kernel/lib/"}))
}

// A soft dependency lives only in the module's .modinfo: libcrc32c needs a
// crc32c provider loaded first, or its init fails.
func TestLoadOrderSoftdep(t *testing.T) {
	objcopy, err := exec.LookPath("objcopy")
	if err != nil {
		t.Skip("skipped: no objcopy to make a module with a .modinfo section (apt-get install binutils)")
	}
	dir := writeModules(t, "kernel/lib/libcrc32c.ko:\nkernel/crypto/crc32c_generic.ko:\nkernel/net/netfilter/nf_tables.ko: kernel/lib/libcrc32c.ko\n",
		"alias crypto-crc32c crc32c_generic\n")
	info := filepath.Join(t.TempDir(), "modinfo")
	require.NoError(t, os.WriteFile(info, []byte("license=GPL\x00softdep=pre: crypto-crc32c post: nothing\x00name=libcrc32c\x00"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "kernel/lib"), 0o755))
	self, err := os.Executable()
	require.NoError(t, err)
	out, err := exec.Command(objcopy, "--add-section", ".modinfo="+info, self, filepath.Join(dir, "kernel/lib/libcrc32c.ko")).CombinedOutput()
	require.NoError(t, err, "%s", out)

	m, err := readModIndex(dir)
	require.NoError(t, err)
	order, err := m.loadOrder([]string{"nf_tables"})
	require.NoError(t, err)
	assert.Equal(t, []string{"kernel/crypto/crc32c_generic.ko", "kernel/lib/libcrc32c.ko", "kernel/net/netfilter/nf_tables.ko"}, order)
}

func TestFilterIndex(t *testing.T) {
	dir := writeModules(t, "kernel/a.ko: kernel/b.ko\nkernel/b.ko:\nkernel/c.ko:\n", "alias x a\nalias y c\nalias z b-\n")
	packed := map[string]bool{"kernel/a.ko": true, "kernel/b.ko": true}
	dep, err := filterIndex(filepath.Join(dir, "modules.dep"), "modules.dep", packed)
	require.NoError(t, err)
	assert.Equal(t, "kernel/a.ko: kernel/b.ko\nkernel/b.ko:\n", string(dep))
	alias, err := filterIndex(filepath.Join(dir, "modules.alias"), "modules.alias", packed)
	require.NoError(t, err)
	assert.Equal(t, "alias x a\n", string(alias))
}

const hostJSON = `{"Action":"start","Package":"berth/01-uts/uts"}
{"Action":"run","Package":"berth/01-uts/uts","Test":"TestA"}
{"Action":"pass","Package":"berth/01-uts/uts","Test":"TestA","Elapsed":0.1}
{"Action":"run","Package":"berth/01-uts/uts","Test":"TestB"}
{"Action":"skip","Package":"berth/01-uts/uts","Test":"TestB","Elapsed":0}
{"Action":"pass","Package":"berth/01-uts/uts","Elapsed":0.3}
{"Action":"skip","Package":"berth/internal/testenv","Elapsed":0}
{"Action":"pass","Package":"berth/docs","Elapsed":2}
`

const guestJSON = `{"Action":"run","Package":"berth/01-uts/uts","Test":"TestA"}
{"Action":"run","Package":"berth/01-uts/uts","Test":"TestA/sub"}
{"Action":"output","Package":"berth/01-uts/uts","Test":"TestA/sub","Output":"    uts_test.go:9: hostname is \"x\"\n"}
{"Action":"fail","Package":"berth/01-uts/uts","Test":"TestA/sub","Elapsed":0.1}
{"Action":"fail","Package":"berth/01-uts/uts","Test":"TestA","Elapsed":0.1}
{"Action":"pass","Package":"berth/01-uts/uts","Test":"TestB","Elapsed":0}
{"Action":"fail","Package":"berth/01-uts/uts","Elapsed":0.5}
not json: kernel noise
{"Action":"pass","Package":"berth/03-mount/rootfs","Test":"TestC","Elapsed":1}
{"Action":"pass","Package":"berth/03-mount/rootfs","Elapsed":1.5}
`

func TestSummary(t *testing.T) {
	host, guest := results{}, results{}
	require.NoError(t, parseEvents(strings.NewReader(hostJSON), host))
	require.NoError(t, parseEvents(strings.NewReader(guestJSON), guest))

	u := guest["berth/01-uts/uts"]
	assert.Equal(t, "fail", u.Result)
	assert.Equal(t, []int{1, 1, 0}, []int{u.Pass, u.Fail, u.Skip}, "top-level tests are counted")
	assert.Equal(t, []string{"TestA/sub", "TestA"}, u.Failed)
	h := host["berth/01-uts/uts"]
	assert.Equal(t, []int{1, 0, 1}, []int{h.Pass, h.Fail, h.Skip})

	var out bytes.Buffer
	want := []string{"berth/01-uts/uts", "berth/03-mount/rootfs", "berth/04-net/network", "berth/05-user/user"}
	bad := summary(&out, host, "HOST", guest, "VM", want,
		map[string]string{"berth/docs": "needs bash"}, map[string]string{"berth/05-user/user": "go test -c: boom"})
	assert.Equal(t, []string{"berth/01-uts/uts", "berth/04-net/network", "berth/05-user/user"}, bad,
		"a failure, a package with no result and one that did not build all fail the run")
	s := out.String()
	assert.Contains(t, s, `hostname is "x"`, "a failing test's output is shown")
	assert.Contains(t, s, "not run: needs bash")
	assert.Contains(t, s, "INCOMPLETE (no result)")
	assert.Contains(t, s, "go test -c: boom")
	assert.NotContains(t, s, "berth/internal/testenv", "packages without tests are left out")
	assert.Regexp(t, `berth/03-mount/rootfs +not run +ok +1 pass +0 fail +0 skip`, s)
}

func TestMemFor(t *testing.T) {
	// Twice the initramfs and 3 GiB for the tests, rounded up to 256 MiB.
	assert.Equal(t, 3328, memFor(20<<20))
	assert.Equal(t, 3584, memFor(200<<20))
	assert.Equal(t, 4096, memFor(400<<20))
}

func TestFormat(t *testing.T) {
	in := `{"Action":"start","Package":"berth/a"}
{"Action":"run","Package":"berth/a","Test":"TestOK"}
{"Action":"output","Package":"berth/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"output","Package":"berth/a","Test":"TestOK","Output":"--- PASS: TestOK (0.00s)\n"}
{"Action":"pass","Package":"berth/a","Test":"TestOK"}
{"Action":"output","Package":"berth/a","Test":"TestBad","Output":"=== RUN   TestBad\n"}
{"Action":"output","Package":"berth/a","Test":"TestBad","Output":"    a_test.go:9: wrong\n"}
{"Action":"output","Package":"berth/a","Test":"TestBad","Output":"--- FAIL: TestBad (0.00s)\n"}
{"Action":"fail","Package":"berth/a","Test":"TestBad"}
{"Action":"output","Package":"berth/a","Output":"FAIL\n"}
{"Action":"output","Package":"berth/a","Output":"FAIL\tberth/a\t0.1s\n"}
{"Action":"fail","Package":"berth/a"}
go: a line that is not an event
{"Action":"output","Package":"berth/b","Output":"PASS\n"}
{"Action":"output","Package":"berth/b","Output":"ok  \tberth/b\t0.2s\n"}
{"Action":"pass","Package":"berth/b"}
`
	var out bytes.Buffer
	failed, err := format(strings.NewReader(in), &out)
	require.NoError(t, err)
	assert.True(t, failed)
	assert.Equal(t, "    a_test.go:9: wrong\n--- FAIL: TestBad (0.00s)\nFAIL\nFAIL\tberth/a\t0.1s\ngo: a line that is not an event\nok  \tberth/b\t0.2s\n", out.String())

	failed, err = format(strings.NewReader(in[strings.Index(in, "go: a line"):]), &out)
	require.NoError(t, err)
	assert.False(t, failed)
}
