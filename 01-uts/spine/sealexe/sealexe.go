//go:build linux

// Package sealexe is why a container's init must not be the host's file.
//
// Every container starts as this runtime's own binary executed once more
// (the spine's init, berth exec's joining process): it sets up inside the
// container's namespaces and then execve()s the user's command. Until
// then the container holds a process whose executable is the HOST's
// binary. Root in the container can reach that file: /proc/1/exe while the
// init waits, or the init itself run again through a command that is a
// script "#!/proc/self/exe" (the kernel runs the interpreter, that is the
// runtime, inside the container). It opens the file, keeps the descriptor,
// and once no process executes the binary any more (the kernel refuses a
// write to a running executable, ETXTBSY) it writes through it: the host's
// binary, which root runs at the next container. That was runc's
// CVE-2019-5736.
//
// So the init never runs the host's file: it runs a copy in a memfd,
// sealed so that no one, not even root, can change it. /proc/PID/exe of
// the init then names "/memfd:berth-sealed (deleted)", and a write to it
// fails with EPERM.
//
// A sealed memfd rather than a read-only bind mount (runc 1.0), runc-dmz or
// an internal overlayfs (runc 1.2): it needs no mount privilege, so it is
// the same for root and rootless; whoever holds the file can check that it
// is sealed (F_GET_SEALS), where a bind mount can be remounted read-write
// by whoever owns the mount; and it is a few lines. Its cost is the copy
// (a few milliseconds for berth's 25 MB, BenchmarkSeal) and the copy's
// memory until the init executes the command: docs/09-security.md has the
// numbers. The spine makes one per container (the init holds it, the
// runtime lets go of it after the start); berth exec's joins share one per
// process (SealedSelf).
package sealexe

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// Name is the memfd's name: /proc/PID/exe of a process that runs a sealed
// copy reads "/memfd:berth-sealed (deleted)".
const Name = "berth-sealed"

// sealsWanted are the seals that make a memfd immutable: no write, no
// resize, no new seals (so none of these can be taken back).
const sealsWanted = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE

var self struct {
	once sync.Once
	f    *os.File
	err  error
}

// SealedSelf returns a sealed memfd copy of the running binary, made on
// the first call and kept for the life of the process.
func SealedSelf() (*os.File, error) {
	self.once.Do(func() { self.f, self.err = Seal("/proc/self/exe") })
	return self.f, self.err
}

// Seal copies the executable at path into a new memfd and seals it.
func Seal(path string) (*os.File, error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("seal %s: not a regular file", path)
	}
	mem, err := memfd(Name)
	if err != nil {
		return nil, err
	}
	n, err := copyAll(mem, src, st.Size())
	if err == nil && n != st.Size() {
		err = fmt.Errorf("copied %d of %d bytes", n, st.Size())
	}
	if err != nil {
		mem.Close()
		return nil, fmt.Errorf("seal: copy %s: %w", path, err)
	}
	// F_SEAL_EXEC (Linux 6.3) also freezes the execute bits; older
	// kernels refuse it, and the seals below are what matters.
	_, _ = unix.FcntlInt(mem.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_EXEC)
	if _, err := unix.FcntlInt(mem.Fd(), unix.F_ADD_SEALS, sealsWanted); err != nil {
		mem.Close()
		return nil, fmt.Errorf("seal: fcntl(F_ADD_SEALS): %w", err)
	}
	return mem, nil
}

// copyAll copies size bytes with sendfile(2), in the kernel: a fifth
// faster than read and write through a buffer, which is what io.Copy
// does here (copy_file_range refuses to cross from a disk filesystem to
// tmpfs). io.Copy finishes the job if sendfile is refused.
func copyAll(dst, src *os.File, size int64) (int64, error) {
	var n int64
	for n < size {
		w, err := unix.Sendfile(int(dst.Fd()), int(src.Fd()), nil, int(min(size-n, 1<<30)))
		if err != nil {
			if n == 0 && (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS)) {
				return io.Copy(dst, src)
			}
			return n, fmt.Errorf("sendfile: %w", err)
		}
		if w == 0 {
			break // the file shrank: the caller compares sizes
		}
		n += int64(w)
	}
	return n, nil
}

// memfd creates an executable, sealable, close-on-exec memfd. MFD_EXEC
// (Linux 6.3) says "executable" explicitly: without it newer kernels warn
// in the kernel log, and with vm.memfd_noexec=1 the memfd would not run.
func memfd(name string) (*os.File, error) {
	flags := unix.MFD_CLOEXEC | unix.MFD_ALLOW_SEALING
	fd, err := unix.MemfdCreate(name, flags|unix.MFD_EXEC)
	if errors.Is(err, unix.EINVAL) { // a kernel before 6.3
		fd, err = unix.MemfdCreate(name, flags)
	}
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	return os.NewFile(uintptr(fd), "memfd:"+name), nil
}

// IsSealed reports whether f is a memfd with every seal that makes it
// immutable. A file on a filesystem is never sealed (F_GET_SEALS: EINVAL).
func IsSealed(f *os.File) bool {
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	return err == nil && seals&sealsWanted == sealsWanted
}

// StartFrom makes cmd execute f: f becomes the child's last descriptor
// (os/exec places ExtraFiles[i] at 3+i before execve, whatever number f
// has here) and cmd.Path names it, /proc/self/fd/N, which execve resolves
// in the child once the descriptors are placed. Call it after every other
// ExtraFiles entry is added. Any other number is unsafe: the child's fork
// code dups files it must move up to numbers above its own (syscall's
// forkAndExecInChild, "nextfd"), and a duplicate of f that happened to
// sit there named another file at the execve (EACCES, as CI found). The
// child inherits N open, and StartFrom returns N: the spine's init closes
// it first thing (with --init it lives on as PID 1), and nsenter's final
// process marks every descriptor it does not pass close-on-exec.
func StartFrom(cmd *exec.Cmd, f *os.File) int {
	cmd.ExtraFiles = append(cmd.ExtraFiles, f)
	n := 2 + len(cmd.ExtraFiles)
	cmd.Path = "/proc/self/fd/" + strconv.Itoa(n)
	return n
}
