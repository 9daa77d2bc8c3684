//go:build linux

package rootfs

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"berth/01-uts/spine"
)

// TestMain lets the test binary run mountEach in a mount namespace of its
// own: a Go test process has threads, and unshare(CLONE_NEWNS) refuses a
// multithreaded caller, so the test starts itself again, cloned into one.
func TestMain(m *testing.M) {
	if os.Getenv("ROOTFS_TEST_HELPER") == "mount" {
		os.Exit(mountHelper())
	}
	os.Exit(m.Run())
}

// mountHelper mounts $SOURCE on /etc/hosts of the rootfs $ROOT, as stage
// 04 does, read-only when $RO is set. With $SWAP set, between making the
// mount point and mounting on it, it does what another container sharing
// the rootfs could do: rename etc away and put a symlink to $OUTSIDE, a
// host directory, in its place. It prints the error (or ok) and every
// mount point under $ROOT or $OUTSIDE.
func mountHelper() int {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		fmt.Println("make / rprivate:", err)
		return 1
	}
	root, outside := os.Getenv("ROOT"), os.Getenv("OUTSIDE")
	c := spine.NewContainer("rootfs-test", []string{"true"})
	opts := []string{"rbind"}
	if os.Getenv("RO") != "" {
		opts = append(opts, "ro")
	}
	c.Spec.Mounts = []specs.Mount{{Destination: "/etc/hosts", Source: os.Getenv("SOURCE"), Type: "bind", Options: opts}}
	var swap func(string)
	if os.Getenv("SWAP") != "" {
		swap = func(string) {
			if err := os.Rename(filepath.Join(root, "etc"), filepath.Join(root, "etc.real")); err != nil {
				fmt.Println("swap:", err)
			}
			if err := os.Symlink(outside, filepath.Join(root, "etc")); err != nil {
				fmt.Println("swap:", err)
			}
		}
	}
	rootDir, err := openRoot(root)
	if err == nil {
		err = mountEach(c, rootDir, root, swap)
	}
	if err != nil {
		fmt.Println("error:", err)
	} else {
		fmt.Println("ok")
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		for _, dir := range []string{root, outside} {
			if rel, ok := strings.CutPrefix(fields[4], dir+"/"); ok {
				fmt.Printf("mounted: %s/%s\n", map[string]string{root: "ROOT", outside: "OUTSIDE"}[dir], rel)
			}
		}
	}
	return 0
}

// runHelper runs mountHelper on a fresh rootfs whose etc is what mk makes
// of it, and returns what it printed.
func runHelper(t *testing.T, ro, swap bool, mk func(root, outside string)) (out, root, outside string) {
	t.Helper()
	root, outside = t.TempDir(), t.TempDir()
	mk(root, outside)
	source := filepath.Join(t.TempDir(), "hosts")
	require.NoError(t, os.WriteFile(source, []byte("127.0.0.1 localhost\n"), 0o644))
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), "ROOTFS_TEST_HELPER=mount", "ROOT="+root, "OUTSIDE="+outside, "SOURCE="+source)
	if ro {
		cmd.Env = append(cmd.Env, "RO=1")
	}
	if swap {
		cmd.Env = append(cmd.Env, "SWAP=1")
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNS}
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, string(b))
	return string(b), root, outside
}

func realEtc(root, _ string) {
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		panic(err)
	}
}

// A rootfs that another container changes while this one is being set up:
// etc is a directory when the mount point is made, and a symlink to a host
// directory when the mount is made. The mount must land in the directory
// that was made (now etc.real), inside the root, or be refused; never in
// the host's directory.
func TestMountDestinationSwappedForASymlink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: mounting needs root")
	}
	out, _, outside := runHelper(t, false, true, realEtc)
	assert.Equal(t, "ok\nmounted: ROOT/etc.real/hosts\n", out)
	assert.NoFileExists(t, filepath.Join(outside, "hosts"), "nothing may be made outside the root")

	// Read-only takes a second call on the new mount: it reopens
	// /etc/hosts, finds the symlink's target instead, and refuses.
	out, _, outside = runHelper(t, true, true, realEtc)
	assert.Regexp(t, `^error: reopen /etc/hosts after mounting it: .*\nmounted: ROOT/etc.real/hosts\n$`, out)
	assert.NoFileExists(t, filepath.Join(outside, "hosts"), "nothing may be made outside the root")
}

// An image whose /etc is a symlink out of the root, absolute or climbing
// with ..: the mount lands where the link leads as seen from inside the
// root, and nothing outside changes.
func TestMountDestinationBehindASymlinkStaysInside(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: mounting needs root")
	}
	for name, link := range map[string]func(outside string) string{
		"absolute": func(outside string) string { return outside },
		"climbing": func(outside string) string { return "../../../../../../../.." + outside },
	} {
		t.Run(name, func(t *testing.T) {
			out, root, outside := runHelper(t, true, false, func(root, outside string) {
				if err := os.Symlink(link(outside), filepath.Join(root, "etc")); err != nil {
					panic(err)
				}
			})
			assert.Equal(t, "ok\nmounted: ROOT"+outside+"/hosts\n", out)
			assert.NoFileExists(t, filepath.Join(outside, "hosts"))
			assert.FileExists(t, filepath.Join(root, outside, "hosts"))
		})
	}
}
