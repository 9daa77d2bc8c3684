//go:build linux

package spine

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// What the command inherits from the runtime is the spine's choice, not
// an accident of how berth was started: its file descriptors, its umask,
// and a working directory inside its root.
//
// A process inherits every file descriptor its parent did not mark
// close-on-exec, and execve keeps them all. Go opens its own files with
// O_CLOEXEC, but not the ones berth itself inherited: a root shell that did
// `exec 7</etc/shadow` before `bin/03-mount run sh` would hand fd 7
// through berth, through the re-executed init, to the container, which
// reads the host's file through /proc/self/fd/7 however well its root is
// pivoted (runc's CVE-2024-21626 was such a descriptor, one of its own).
// So, as runc does:
//
//   - the runtime marks what it inherited close-on-exec as soon as it
//     starts (Main, and Run for other callers): the init never gets it;
//   - the init marks every descriptor above 2 close-on-exec just before
//     the command runs (execCommand), whatever a step opened;
//   - the fds the command is meant to get are an explicit list,
//     Container.PreserveFds, passed at the same numbers.

// maxPreserveFd bounds Container.PreserveFds: each fd up to the highest
// one takes a slot in the child's table.
const maxPreserveFd = 1 << 16

// envSyncFd tells the init where its end of the sync socket is: after the
// preserved fds, which keep their numbers from 3 on.
const envSyncFd = "_BERTH_SYNC_FD"

// CloseExecExcept marks every file descriptor from 3 up close-on-exec,
// except those in keep. It uses close_range(CLOSE_RANGE_CLOEXEC) (Linux
// 5.11), and walks /proc/self/fd on older kernels.
func CloseExecExcept(keep []int) error {
	keep = slices.Clone(keep)
	slices.Sort(keep)
	first := 3
	for _, fd := range keep {
		if fd < first {
			continue // 0-2, or a duplicate
		}
		if fd > first {
			if err := cloexecRange(first, fd-1); err != nil {
				return err
			}
		}
		first = fd + 1
	}
	return cloexecRange(first, math.MaxUint32)
}

func cloexecRange(first, last int) error {
	err := unix.CloseRange(uint(first), uint(last), unix.CLOSE_RANGE_CLOEXEC)
	// ENOSYS: no close_range (before 5.9); EINVAL: no CLOSE_RANGE_CLOEXEC
	// (before 5.11).
	if err == nil || !(errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL)) {
		if err != nil {
			return fmt.Errorf("close_range(%d, %d, CLOSE_RANGE_CLOEXEC): %w", first, last, err)
		}
		return nil
	}
	return cloexecRangeProc(first, last)
}

// cloexecRangeProc is the fallback: set FD_CLOEXEC on each open fd that
// /proc/self/fd lists. It checks that /proc is a procfs first: a fake one
// would list nothing, and leave every descriptor open.
func cloexecRangeProc(first, last int) error {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list open file descriptors: %w", err)
	}
	defer d.Close()
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(d.Fd()), &st); err != nil {
		return fmt.Errorf("statfs /proc/self/fd: %w", err)
	}
	if st.Type != unix.PROC_SUPER_MAGIC {
		return errors.New("list open file descriptors: /proc is not a procfs")
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("list open file descriptors: %w", err)
	}
	for _, n := range names {
		fd, err := strconv.Atoi(n)
		if err != nil || fd < first || fd > last {
			continue
		}
		// EBADF: closed since the listing (the listing's own fd is among
		// them), which is as good.
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && !errors.Is(err, unix.EBADF) {
			return fmt.Errorf("mark fd %d close-on-exec: %w", fd, err)
		}
	}
	return nil
}

// checkPreserveFds refuses a list the runtime cannot honour: only fds from
// 3 up (0-2 are the command's stdio anyway), each once, each open.
func checkPreserveFds(fds []int) error {
	seen := map[int]bool{}
	for _, fd := range fds {
		switch {
		case fd < 3 || fd > maxPreserveFd:
			return fmt.Errorf("cannot pass fd %d to the container: only fds 3 to %d are passed (0-2 are its stdio)", fd, maxPreserveFd)
		case seen[fd]:
			return fmt.Errorf("fd %d is passed to the container twice", fd)
		}
		seen[fd] = true
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return fmt.Errorf("cannot pass fd %d to the container: it is not open (%v)", fd, err)
		}
	}
	return nil
}

// preservedFiles returns what exec.Cmd.ExtraFiles needs to put each fd of
// keep at the same number in the child (ExtraFiles[i] becomes fd 3+i; a
// nil entry leaves that number closed). They are duplicates, so that the
// caller's own descriptors are left as they were; close them once the
// child has started.
func preservedFiles(keep []int) ([]*os.File, error) {
	if len(keep) == 0 {
		return nil, nil
	}
	files := make([]*os.File, slices.Max(keep)-2)
	for _, fd := range keep {
		dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
		if err != nil {
			closeFiles(files)
			return nil, fmt.Errorf("dup fd %d for the container: %w", fd, err)
		}
		files[fd-3] = os.NewFile(uintptr(dup), "fd "+strconv.Itoa(fd))
	}
	return files, nil
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}

// CommandFiles is what an Execer that starts the command as a child (02's
// --init) gives os.StartProcess: the init's stdio, then the preserved fds
// at their numbers, nil (closed) in between. Close the entries from 3 on
// once the command has started: an init that kept the write end of a pipe
// passed to the command would keep the pipe's reader from ever seeing
// its end.
func (c *Container) CommandFiles() []*os.File {
	files := []*os.File{os.Stdin, os.Stdout, os.Stderr}
	for _, fd := range c.PreserveFds {
		for len(files) <= fd {
			files = append(files, nil)
		}
		files[fd] = os.NewFile(uintptr(fd), "fd "+strconv.Itoa(fd))
	}
	return files
}

// verifyCwd checks, after the chdir to the working directory, that it is
// inside the container's root. A working directory given as
// /proc/self/fd/N, where N is a directory the init holds from outside the
// root, would otherwise start the command on the host's filesystem, with
// ".." leading anywhere (runc's CVE-2024-21626). getcwd(2) says so: for a
// directory that is not under the process's root it returns a path
// beginning with "(unreachable)", which unix.Getwd turns into ENOENT.
func verifyCwd(cwd string) error {
	wd, err := unix.Getwd()
	if errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("working directory %s is outside the container's root: refused", cwd)
	}
	if err != nil {
		return fmt.Errorf("getcwd after chdir to %s: %w", cwd, err)
	}
	if len(wd) == 0 || wd[0] != '/' {
		return fmt.Errorf("working directory %s is outside the container's root (%q): refused", cwd, wd)
	}
	return nil
}

// DefaultUmask is the umask of the runtime and, unless the spec says
// otherwise (process.user.umask), of the command: runc's and Docker's.
// The caller's own (a `umask 077` in a root shell) would otherwise make
// the container's files, and those the runtime makes for it, unreadable
// to any other user in it.
const DefaultUmask = 0o022

// CommandUmask is the spec's process.user.umask, or DefaultUmask.
func CommandUmask(p *specs.Process) int {
	if p != nil && p.User.Umask != nil {
		return int(*p.User.Umask & 0o777)
	}
	return DefaultUmask
}
