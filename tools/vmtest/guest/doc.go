// Package guest checks, from inside the vmtest VM, that the guest is the
// world the stages' tests are promised there: pure cgroup v2 with every
// controller delegated, the kernel modules, a root that pivot_root accepts,
// the stage binaries and the rootfs in place. Outside the VM its tests skip.
package guest
