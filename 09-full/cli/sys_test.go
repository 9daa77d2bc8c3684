//go:build linux

package cli_test

import "golang.org/x/sys/unix"

func killPid(pid int) error { return unix.Kill(pid, unix.SIGKILL) }

func unmount(p string) error { return unix.Unmount(p, unix.MNT_DETACH) }
