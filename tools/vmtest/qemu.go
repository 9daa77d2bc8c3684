package main

// Running the guest. QEMU's own exit status says nothing (it is 0 after a
// poweroff and after a kernel panic alike), so the verdict comes from the
// isa-debug-exit port that /init writes, checked against the marker lines
// on the console and the test events on the second serial port.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// A vm is one QEMU run.
type vm struct {
	Kernel  kernel
	Initrd  string
	MemMB   int
	SMP     int
	KVM     bool
	Timeout time.Duration
	Shell   bool
	Append  []string // extra kernel arguments (vmtest.*)
	Results string   // file that receives ttyS1 (test mode)
}

func (v vm) args() []string {
	a := []string{"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-nic", "none",
		"-m", fmt.Sprint(v.MemMB), "-smp", fmt.Sprint(v.SMP)}
	if v.KVM {
		a = append(a, "-accel", "kvm", "-cpu", "host")
	} else {
		a = append(a, "-accel", "tcg,thread=multi", "-cpu", "max")
	}
	if v.Shell {
		// mon:stdio: Ctrl-A X quits, Ctrl-A C opens the QEMU monitor.
		a = append(a, "-serial", "mon:stdio", "-serial", "null")
	} else {
		a = append(a, "-serial", "stdio", "-serial", "file:"+v.Results,
			"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04")
	}
	cmdline := append([]string{"console=ttyS0", "quiet", "panic=-1"}, v.Append...)
	a = append(a, "-kernel", v.Kernel.vmlinuz(), "-initrd", v.Initrd, "-append", strings.Join(cmdline, " "))
	return a
}

// kvmFast is the probe for a KVM that runs a stock kernel at speed: the
// CPU itself has hardware virtualisation and /dev/kvm is not PVM's
// (pagetable-based nested virtualisation, which emulates a non-PVM guest
// more than 100 times slower than TCG: see docs/contributing.md).
func kvmFast() (bool, string) {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false, "no usable /dev/kvm"
	}
	f.Close()
	if _, err := os.Stat("/sys/module/kvm_pvm"); err == nil {
		return false, "/dev/kvm is kvm_pvm (nested PVM: a stock kernel is emulated, slower than TCG)"
	}
	cpu, _ := os.ReadFile("/proc/cpuinfo")
	if !regexp.MustCompile(`(?m)^flags\s*:.*\b(vmx|svm)\b`).Match(cpu) {
		return false, "the CPU has no vmx/svm flag"
	}
	return true, "/dev/kvm with hardware virtualisation"
}

// A vmResult is what the host saw of a run.
type vmResult struct {
	DebugExit int           // the rc /init wrote, -1 if it never did
	Done      bool          // VMTEST-DONE was printed
	Wall      time.Duration // QEMU start to exit: boot to poweroff
	Uptime    string        // guest uptime at VMTEST-DONE
	TimedOut  bool
}

var doneLine = regexp.MustCompile(`^VMTEST-DONE rc=(\d+) uptime=(\S+)`)

// run boots the VM and waits for it to power off. The console goes to
// console (and the log); in shell mode the terminal is QEMU's.
func (v vm) run(ctx context.Context, console io.Writer) (vmResult, error) {
	res := vmResult{DebugExit: -1}
	qemu := "qemu-system-x86_64"
	if v.Shell {
		cmd := exec.CommandContext(ctx, qemu, v.args()...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		start := time.Now()
		err := cmd.Run()
		res.Wall = time.Since(start)
		return res, err
	}
	ctx, cancel := context.WithTimeout(ctx, v.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, v.args()...)
	cmd.WaitDelay = 5 * time.Second
	cmd.Stdin = nil // /dev/null
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start %s: %w", qemu, err)
	}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := cleanLine(sc.Text())
		fmt.Fprintln(console, line)
		if m := doneLine.FindStringSubmatch(line); m != nil {
			res.Done = true
			res.Uptime = m[2]
		}
	}
	err = cmd.Wait()
	res.Wall = time.Since(start)
	switch ctx.Err() {
	case context.DeadlineExceeded:
		res.TimedOut = true
		return res, fmt.Errorf("the VM did not power off within %v (killed)", v.Timeout)
	case context.Canceled:
		return res, fmt.Errorf("interrupted: the VM was stopped")
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		// 0: a poweroff or a panic, never a debug-exit write.
	case errors.As(err, &ee) && ee.ExitCode() > 0 && ee.ExitCode()&1 == 1:
		res.DebugExit = ee.ExitCode() >> 1
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return res, fmt.Errorf("%s killed by %v\n%s", qemu, ws.Signal(), stderr.String())
		}
		return res, fmt.Errorf("%s: %v\n%s", qemu, err, stderr.String())
	default:
		return res, fmt.Errorf("%s: %w", qemu, err)
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		fmt.Fprintln(console, s)
	}
	return res, nil
}

// cleanLine drops the \r of the serial line discipline and terminal escape
// sequences (firmware and kernel both print some).
func cleanLine(s string) string {
	s = strings.ReplaceAll(s, "\r", "")
	return escape.ReplaceAllString(s, "")
}

var escape = regexp.MustCompile(`\x1b(\[[0-9;?]*[A-Za-z]|[()][A-Z0-9]|[=>c])`)
