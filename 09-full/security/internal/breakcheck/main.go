// Command breakcheck tries, from inside a container, what a container must
// not be able to do to its host, and prints one line per check: "allowed"
// or "refused", and why. It is the chapter's experiment: run it in a
// stage 08 container, then with berth's security defaults. It changes
// nothing on the host even where it is allowed: it writes a value back
// unchanged (only the container's own domainname, never in the host's UTS
// namespace), asks the clock for an invalid tick, opens for writing
// without writing, loads no valid module, reads and lists only. Each
// check's comment says why it is harmless: --privileged runs them all.
//
// Build it static, to copy into any root filesystem:
//
//	CGO_ENABLED=0 go build -o breakcheck ./09-full/security/internal/breakcheck
//
// Usage: breakcheck [-k] [CHECK...]  (default: every check; breakcheck -l lists
// them; -k prints each check's short name instead of its description)
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

type check struct {
	name string
	what string
	run  func() (string, error) // a note when allowed; an error when refused (or not applicable)
}

// notApplicable marks a check this machine cannot make.
type notApplicable string

func (n notApplicable) Error() string { return string(n) }

var checks = []check{
	{"caps", "capabilities (CapEff)", capEff},
	{"sysctl", "write /proc/sys/kernel/domainname", writeDomainname},
	{"core_pattern", "open /proc/sys/kernel/core_pattern for writing", openCorePattern},
	{"timer_list", "read /proc/timer_list (host timers)", readMasked("/proc/timer_list")},
	{"mount_tmpfs", "mount a tmpfs", mountFS("tmpfs")},
	{"mount_proc", "mount a proc", mountFS("proc")},
	{"userns_mount", "unshare -U, then mount a tmpfs", usernsMount},
	{"mknod_disk", "mknod the host's disk, then read it", mknodDisk},
	{"tun", "mknod /dev/net/tun, then open it", tun},
	{"kmsg", "mknod /dev/kmsg, then read the host's kernel log", kmsg},
	{"syslog", "read the kernel log with syslog(2) (dmesg)", syslogRead},
	{"adjtimex", "adjtimex: may it set the clock? (tick 0)", adjtimex},
	{"module", "load a kernel module (finit_module)", loadModule},
	{"keyctl", "keyctl: find the session keyring", keyctl},
	{"shocker", "open the host's / by file handle (shocker)", shocker},
	{"personality", "personality(ADDR_NO_RANDOMIZE)", personality},
	{"nosys", "system call 1000 (no such call)", noSuchCall},
	{"pid1", "PID 1's binary (/proc/1/exe)", pid1},
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-userns-child" {
		os.Exit(usernsChild())
	}
	if len(os.Args) > 1 && os.Args[1] == "-l" {
		for _, c := range checks {
			fmt.Printf("%-13s %s\n", c.name, c.what)
		}
		return
	}
	args := os.Args[1:]
	short := len(args) > 0 && args[0] == "-k"
	if short {
		args = args[1:]
	}
	want := map[string]bool{}
	for _, a := range args {
		want[a] = true
	}
	for _, c := range checks {
		if len(want) > 0 && !want[c.name] {
			continue
		}
		label := fmt.Sprintf("%-50s", c.what)
		if short {
			label = c.name
		}
		note, err := c.run()
		var na notApplicable
		switch {
		case errors.As(err, &na):
			fmt.Printf("%s n/a (%s)\n", label, na)
		case err != nil:
			fmt.Printf("%s refused: %s\n", label, errText(err))
		case note != "":
			fmt.Printf("%s allowed: %s\n", label, note)
		default:
			fmt.Printf("%s allowed\n", label)
		}
	}
}

func errText(err error) string {
	var e syscall.Errno
	if errors.As(err, &e) {
		return fmt.Sprintf("%s (%s)", e.Error(), unix.ErrnoName(e))
	}
	return err.Error()
}

func capEff() (string, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			v = strings.TrimSpace(v)
			if v == "0000000000000000" {
				return "", errors.New("none")
			}
			return v, nil
		}
	}
	return "", errors.New("no CapEff in /proc/self/status")
}

// writeDomainname writes the UTS namespace's domain name back unchanged:
// it shows whether /proc/sys is writable at all. Harmless: the value is
// the one already there, and the file is the container's own UTS
// namespace's; in the host's (the kernel's first, whose inode number is
// fixed: PROC_UTS_INIT_INO) it writes nothing.
func writeDomainname() (string, error) {
	const p = "/proc/sys/kernel/domainname"
	if ns, err := os.Readlink("/proc/self/ns/uts"); err != nil || ns == "uts:[4026531838]" {
		return "", notApplicable("the host's UTS namespace (or an unknown one): nothing written")
	}
	v, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return "", unwrap(err)
	}
	defer f.Close()
	if _, err := f.Write(v); err != nil {
		return "", unwrap(err)
	}
	return "", nil
}

// openCorePattern only opens: core_pattern is the host's, and a pipe in
// it runs a program as root on the host when any process dumps core.
// Harmless: an open for writing with no write changes nothing.
func openCorePattern() (string, error) {
	f, err := os.OpenFile("/proc/sys/kernel/core_pattern", os.O_WRONLY, 0)
	if err != nil {
		return "", unwrap(err)
	}
	f.Close()
	return "the host's core_pattern: a pipe there runs as root on the host", nil
}

// readMasked reads a file the defaults mask. Harmless: a read.
func readMasked(p string) func() (string, error) {
	return func() (string, error) {
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			return "", notApplicable("this kernel has no " + p)
		}
		if err != nil {
			return "", unwrap(err)
		}
		if len(b) == 0 {
			return "", errors.New("empty (masked)")
		}
		return fmt.Sprintf("%d bytes", len(b)), nil
	}
}

// mountFS mounts a file system on a fresh directory and unmounts it.
// Harmless: the mount is in the container's own mount namespace.
func mountFS(fstype string) func() (string, error) {
	return func() (string, error) {
		dir, err := os.MkdirTemp("", "mnt")
		if err != nil {
			return "", err
		}
		defer os.Remove(dir)
		if err := unix.Mount(fstype, dir, fstype, 0, ""); err != nil {
			return "", err
		}
		_ = unix.Unmount(dir, unix.MNT_DETACH)
		return "", nil
	}
}

// usernsMount runs this program again in a new user and mount namespace
// (unshare -U -m), where it tries to mount a tmpfs: as root of a user
// namespace, a process may mount in the mount namespaces it owns.
// Harmless: both namespaces are new, and go with the child.
func usernsMount() (string, error) {
	cmd := exec.Command("/proc/self/exe", "-userns-child")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("unshared, but %s", strings.TrimSpace(out.String()))
		}
		return "", unwrap(err)
	}
	return "", nil
}

func usernsChild() int {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		fmt.Printf("make / private: %s", errText(err))
		return 1
	}
	if err := unix.Mount("tmpfs", "/tmp", "tmpfs", 0, ""); err != nil {
		fmt.Printf("mount: %s", errText(err))
		return 1
	}
	return 0
}

// mknodDisk makes a node for the block device the container's root lives
// on (the host's disk, when the root is a directory on it) and reads its
// first sector: with it, the whole disk. Harmless: a read.
func mknodDisk() (string, error) {
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		return "", err
	}
	major, minor := unix.Major(st.Dev), unix.Minor(st.Dev)
	if major == 0 {
		return "", notApplicable("the root is not on a block device")
	}
	return readNode(unix.S_IFBLK, major, minor, fmt.Sprintf("device %d:%d", major, minor))
}

// kmsg makes a node with /dev/kmsg's numbers in a temporary directory of
// the container and reads one record. Harmless: every open of /dev/kmsg
// reads from its own position, so nothing is taken from another reader.
func kmsg() (string, error) { return readNode(unix.S_IFCHR, 1, 11, "") }

// tun opens a device the container was not given: what the device cgroup
// decides, whatever the node's permissions say. Harmless: an interface
// exists only after TUNSETIFF, which is never asked.
func tun() (string, error) { return openNode(unix.S_IFCHR, 10, 200, unix.O_RDWR, "") }

func readNode(typ uint32, major, minor uint32, note string) (string, error) {
	return openNode(typ, major, minor, unix.O_RDONLY, note)
}

func openNode(typ uint32, major, minor uint32, mode int, note string) (string, error) {
	dir, err := os.MkdirTemp("", "dev")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	p := dir + "/node"
	if err := unix.Mknod(p, typ|0o600, int(unix.Mkdev(major, minor))); err != nil {
		return "", fmt.Errorf("mknod: %s", errText(err))
	}
	fd, err := unix.Open(p, mode|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("mknod allowed, open: %s", errText(err))
	}
	defer unix.Close(fd)
	if mode != unix.O_RDONLY {
		return "opened", nil
	}
	buf := make([]byte, 512)
	n, err := unix.Read(fd, buf)
	if err != nil && err != unix.EAGAIN {
		return "", fmt.Errorf("read: %s", errText(err))
	}
	if note == "" {
		note = fmt.Sprintf("read %d bytes", n)
	} else {
		note = fmt.Sprintf("%s, read %d bytes", note, n)
	}
	return note, nil
}

// syslogRead reads the kernel log. Harmless: READ_ALL leaves the log as it
// is (READ_CLEAR would empty it, READ would consume it).
func syslogRead() (string, error) {
	buf := make([]byte, 256)
	n, err := unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d bytes of the host's kernel log", n), nil
}

// adjtimex asks to set the clock's tick length to 0: any change needs
// CAP_SYS_TIME. Harmless: 0 is not a tick the kernel takes.
func adjtimex() (string, error) {
	// Ask to set the tick to 0: the kernel checks CAP_SYS_TIME before it
	// looks at the value, so EPERM means refused and EINVAL means the
	// container may set the host's clock; the value is never taken.
	tx := unix.Timex{Modes: unix.ADJ_TICK, Tick: 0}
	_, err := unix.Adjtimex(&tx)
	switch {
	case errors.Is(err, unix.EINVAL):
		return "the host's clock is the container's (the kernel refused only the value 0)", nil
	case err == nil:
		return "", errors.New("the kernel took tick 0: this check is wrong")
	}
	return "", err
}

// loadModule offers the kernel an empty file as a module: where loading
// is allowed, the kernel reads it and rejects it as no module (the
// capability is checked first: EPERM means refused, anything else that
// the kernel would have loaded a real one). Harmless: there is no module
// in it to load.
func loadModule() (string, error) {
	f, err := os.CreateTemp("", "mod*.ko")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	err = unix.FinitModule(int(f.Fd()), "", 0)
	switch {
	case err == nil:
		return "loaded", nil
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
		return "", err
	case errors.Is(err, unix.ENOSYS):
		return "", notApplicable("this kernel cannot load modules")
	}
	return "the kernel read it: " + errText(err), nil
}

// keyctl names the session keyring. Harmless: a read.
func keyctl() (string, error) {
	id, err := unix.KeyctlInt(unix.KEYCTL_GET_KEYRING_ID, unix.KEY_SPEC_SESSION_KEYRING, 0, 0, 0)
	if err != nil {
		return "", err
	}
	desc, err := unix.KeyctlString(unix.KEYCTL_DESCRIBE, id)
	if err != nil {
		return fmt.Sprintf("keyring %d", id), nil
	}
	parts := strings.Split(desc, ";")
	return fmt.Sprintf("keyring %d %q", id, parts[len(parts)-1]), nil
}

// shocker is the 2014 escape from Docker: open_by_handle_at opens any
// inode of a file system the caller has a file on, by number. Inode 2 is
// the root of an ext2/3/4 file system: if the container's root is a
// directory on the host's disk, that is a way out of it. Harmless: it
// lists a few names.
func shocker() (string, error) {
	root, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(root)
	h, _, err := unix.NameToHandleAt(root, "", unix.AT_EMPTY_PATH)
	if err != nil {
		return "", notApplicable("this file system gives no handles: " + errText(err))
	}
	if h.Type() != 1 { // FILEID_INO32_GEN: ext2/3/4's
		return "", notApplicable(fmt.Sprintf("not an ext4 handle (type %d)", h.Type()))
	}
	var b [8]byte
	*(*uint32)(unsafe.Pointer(&b[0])) = 2 // inode 2, generation 0
	fd, err := unix.OpenByHandleAt(root, unix.NewFileHandle(1, b[:]), unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return "", err
	}
	f := os.NewFile(uintptr(fd), "host-root")
	defer f.Close()
	names, _ := f.Readdirnames(8)
	return "the file system's root holds " + strings.Join(names, " "), nil
}

// personality turns address space randomisation off for this process
// only, and back. Harmless: its own process, restored.
func personality() (string, error) {
	const addrNoRandomize = 0x0040000
	old, _, e := unix.Syscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0)
	if e != 0 {
		return "", e
	}
	if _, _, e := unix.Syscall(unix.SYS_PERSONALITY, addrNoRandomize, 0, 0); e != 0 {
		return "", e
	}
	unix.Syscall(unix.SYS_PERSONALITY, old, 0, 0)
	return "address space randomisation can be turned off", nil
}

func noSuchCall() (string, error) {
	_, _, e := unix.Syscall(1000, 0, 0, 0)
	if e == 0 {
		return "it exists", nil
	}
	return "", e
}

func pid1() (string, error) {
	l, err := os.Readlink("/proc/1/exe")
	if err != nil {
		return "", unwrap(err)
	}
	st, err := os.Stat("/proc/1/exe")
	if err != nil {
		return "", unwrap(err)
	}
	return fmt.Sprintf("%s, %s bytes", l, strconv.FormatInt(st.Size(), 10)), nil
}

func unwrap(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err
	}
	return err
}
