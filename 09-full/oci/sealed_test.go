//go:build linux

package oci_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/01-uts/spine/sealexe"
)

// attackInit is what root in container A does to the init of container B
// (CVE-2019-5736's kind). A shares the host's PID namespace, so it sees
// B's init (berth-oci's binary executed once more, "berth-init", waiting
// for start), whose pid the test writes to /home/target. A keeps a
// descriptor of its executable, and once B has started
// (its init has executed B's command, and berth-oci has exited: no one
// executes the binary any more) appends to the file through it. Outcome in
// /home/result: "wrote", "refused: …" or "open failed".
const attackInit = `out=/home
until p=$(cat $out/target 2>/dev/null) && [ -n "$p" ]; do sleep 0.05; done
readlink /proc/$p/exe >$out/exe
exec 3</proc/$p/exe || { echo open failed >$out/result; exit 0; }
echo $p >$out/opened
while [ "$(cat /proc/$p/comm 2>/dev/null)" = berth-init ]; do sleep 0.05; done
for i in $(seq 200); do
	if msg=$( { echo '#pwned by container A' >>/proc/self/fd/3; } 2>&1 ); then
		echo wrote >$out/result; exit 0
	fi
	case $msg in *busy*) sleep 0.05;; *) echo "refused: $msg" >$out/result; exit 0;; esac
done
echo "gave up: $msg" >$out/result`

// TestInitIsSealedCopy: a container's init, while it waits for start,
// runs a sealed copy of berth-oci's binary, not the host's file: root in a
// container that sees it (here one in the host's PID namespace, with
// CAP_SYS_PTRACE: docker run --pid host --cap-add SYS_PTRACE) finds /proc/PID/exe a memfd, and cannot write the
// host's binary through it after start. Without the sealed copy the write
// goes to the host's berth-oci, which root runs at the next container.
func TestInitIsSealedCopy(t *testing.T) {
	r := newRT(t)
	// A copy of berth-oci: the attack writes to it when it succeeds, and
	// no other test executes it (a write waits until no one does).
	r.bin = filepath.Join(t.TempDir(), "berth-oci")
	copyFile(t, binary(t), r.bin)
	before := fileSum(t, r.bin)

	out := t.TempDir()
	a := r.bundle([]string{"sh", "-c", attackInit}, func(s *specs.Spec) {
		// CAP_SYS_PTRACE (docker run --cap-add SYS_PTRACE, for a
		// debugger): B's init holds more capabilities than A's root.
		c := s.Process.Capabilities
		c.Bounding, c.Effective, c.Permitted = append(c.Bounding, "CAP_SYS_PTRACE"), append(c.Effective, "CAP_SYS_PTRACE"), append(c.Permitted, "CAP_SYS_PTRACE")
		s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == specs.PIDNamespace })
		// On /home, which the shared busybox tree has: a destination it
		// lacks would be made in it (/mnt was, and every chapter's ls /
		// then showed it).
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/home", Type: "bind", Source: out, Options: []string{"rbind", "rw"}})
	})
	r.ok("create", "--bundle", a, "o3-attacker")
	r.ok("start", "o3-attacker")

	r.ok("create", "--bundle", r.bundle([]string{"sleep", "1000"}, nil), "o3-victim")
	bpid := int(r.state("o3-victim")["pid"].(float64))
	require.NoError(t, os.WriteFile(filepath.Join(out, "target"), []byte(fmt.Sprintln(bpid)), 0o644))
	opened := waitFile(t, filepath.Join(out, "opened"), filepath.Join(out, "result"))
	exe, _ := os.ReadFile(filepath.Join(out, "exe"))
	assert.Equal(t, "/memfd:"+sealexe.Name+" (deleted)\n", string(exe), "B's init seen from A: %s", opened)
	r.ok("start", "o3-victim")

	result := strings.TrimSpace(waitFile(t, filepath.Join(out, "result")))
	t.Logf("the attack: %s", result)
	assert.NotEqual(t, "wrote", result, "root in container A wrote berth-oci's binary")
	assert.Equal(t, before, fileSum(t, r.bin), "the host's binary changed")
	r.ok("delete", "--force", "o3-victim")
	r.ok("delete", "--force", "o3-attacker")
}

// waitFile returns the content of the first of paths to appear non-empty.
func waitFile(t *testing.T, paths ...string) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, p := range paths {
			if b, err := os.ReadFile(p); err == nil && len(b) > 0 {
				return string(b)
			}
		}
	}
	t.Fatalf("none of %v appeared", paths)
	return ""
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dst, b, 0o755))
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return fmt.Sprintf("%x", sha256.Sum256(b))
}
