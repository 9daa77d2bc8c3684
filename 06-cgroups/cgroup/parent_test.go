//go:build linux

package cgroup

import (
	"fmt"
	"os"
	"testing"

	"berth/internal/testenv"
)

// Every container's group lives under the shared parent /berth, and
// containers come and go at the same time: one run in a hundred failed
// with "read /sys/fs/cgroup/cpuset/berth/cpuset.cpus: no such device"
// while another removed the parent it had just seen empty. Deleting a
// group leaves the parent, in every hierarchy.
func TestDeleteLeavesTheSharedParent(t *testing.T) {
	testenv.RequireRoot(t)
	mode, err := DetectMode()
	if err != nil {
		t.Skipf("skipped: this machine has no cgroup filesystem: %v", err)
	}
	path := fmt.Sprintf("/%s/test-parent-%d", Parent, os.Getpid())
	g, err := Create(mode, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Delete(); err != nil {
		t.Fatal(err)
	}
	if Exists(mode, path) {
		t.Fatalf("group %s still there after Delete", path)
	}
	for _, d := range Dirs(mode, "/"+Parent) {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("the shared parent must stay: %v", err)
		}
	}
}
