// Command vmtest runs berth's test suite a second time, inside a throwaway
// virtual machine: Debian's stock kernel (another kernel than the host's)
// with a pure cgroup v2 hierarchy, booted by QEMU from an initramfs built
// here, and powered off when the tests are done. It prints the results
// beside the host run's and fails if anything failed in the VM.
//
//	go run ./tools/vmtest [-host-json FILE] [-run REGEX] [-v]   (make vm-test)
//	go run ./tools/vmtest -shell                                 (make vm-shell)
//
// See docs/contributing.md, "The VM suite".
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

var (
	flagShell       = flag.Bool("shell", false, "boot the VM with a root shell on this terminal instead of running the tests")
	flagHostJSON    = flag.String("host-json", "", "`file` with the host run's go test -json output, for the side-by-side table")
	flagOut         = flag.String("out", "tmp/vmtest", "`dir` for the VM's console log and test events (kept; overwritten each run)")
	flagTimeout     = flag.Duration("timeout", 45*time.Minute, "kill the VM if it has not powered off by then")
	flagTestTimeout = flag.Duration("test-timeout", 20*time.Minute, "-test.timeout for each package in the VM (09-full/cli took 10 min there under emulation)")
	flagRun         = flag.String("run", "", "run only tests matching `regexp` in the VM (-test.run)")
	flagMem         = flag.Int("mem", 0, "guest memory in MiB (0: sized from the initramfs)")
	flagSMP         = flag.Int("smp", 2, "guest CPUs")
	flagAccel       = flag.String("accel", "auto", "tcg, kvm, or auto (kvm only where it runs a stock kernel at speed)")
	flagKeep        = flag.Bool("keep", false, "keep the temporary build directory (initramfs, binaries) and print its path")
	flagVerbose     = flag.Bool("v", false, "print every test's output from the VM, not only the failures'")
	flagSummary     = flag.Bool("summary", false, "run nothing: print the table of the last VM run in -out beside -host-json, and fail as it failed")
	flagFormat      = flag.Bool("format", false, "run nothing: read go test -json on stdin, print what go test prints, fail if a test failed")
	flagExclude     stringList
)

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "vmtest: "+format+"\n", args...)
}

func main() {
	flag.Var(&flagExclude, "exclude", "do not run packages matching `regexp` in the VM (repeatable)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code, err := vmtest(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func vmtest(ctx context.Context) (int, error) {
	start := time.Now()
	if *flagFormat {
		failed, err := format(os.Stdin, os.Stdout)
		if failed && err == nil {
			return 1, nil
		}
		return map[bool]int{true: 1, false: 0}[failed], err
	}
	repo, err := repoRoot()
	if err != nil {
		return 1, err
	}
	out := *flagOut
	if !filepath.IsAbs(out) {
		out = filepath.Join(repo, out)
	}
	if *flagSummary {
		return report(out, *flagHostJSON)
	}
	if err := ensurePackages(); err != nil {
		return 1, err
	}
	k, err := fetchKernel(cacheDir())
	if err != nil {
		return 1, err
	}
	logf("kernel %s (%s)", k.Release, k.Dir)

	tmp, err := os.MkdirTemp("", "berth-vmtest-")
	if err != nil {
		return 1, err
	}
	if *flagKeep {
		logf("keeping %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	// Binaries: every stage, test2json, and every package's tests.
	im := image{Kernel: k, Repo: repo, BinDir: filepath.Join(tmp, "bin"), TestDir: filepath.Join(tmp, "tests"), HelperDir: filepath.Join(tmp, "helpers"),
		Test2JSON: filepath.Join(tmp, "test2json"), TestTimeout: flagTestTimeout.String()}
	stages, helpers, err := commands(repo)
	if err != nil {
		return 1, err
	}
	var names []string
	for _, s := range stages {
		names = append(names, filepath.Base(s.Dir))
		if err := goBuild(ctx, repo, filepath.Join(im.BinDir, filepath.Base(s.Dir)), false, "./"+s.Dir); err != nil {
			return 1, err
		}
	}
	im.Helpers = map[string]string{}
	for _, h := range helpers {
		env := helperEnv(h)
		if im.Helpers[env] != "" {
			return 1, fmt.Errorf("helpers %s and %s would both be $%s: rename one", im.Helpers[env], h.Dir, env)
		}
		im.Helpers[env] = h.Dir
		if err := goBuild(ctx, repo, filepath.Join(tmp, "helpers", filepath.Base(h.Dir)), false, "./"+h.Dir); err != nil {
			return 1, err
		}
	}
	// The C helpers: berth-monitor (09-full/berth-monitor/*.c), built by
	// the Makefile's rule (static: the guest has no C library).
	for _, h := range cHelpers {
		env := "BERTH_" + strings.ToUpper(strings.ReplaceAll(filepath.Base(h), "-", "_"))
		im.Helpers[env] = h
		if err := cBuild(ctx, repo, filepath.Join(tmp, "helpers", filepath.Base(h))); err != nil {
			return 1, err
		}
	}
	if err := goBuild(ctx, repo, im.Test2JSON, false, "cmd/test2json"); err != nil {
		return 1, err
	}
	logf("built %d stage binaries: %s; %d helpers", len(stages), strings.Join(names, " "), len(helpers))
	tests, notInVM, err := testPackages(repo, flagExclude)
	if err != nil {
		return 1, err
	}
	buildErr := map[string]string{}
	if !*flagShell {
		for _, p := range tests {
			if ctx.Err() != nil {
				return 1, ctx.Err()
			}
			if err := goBuild(ctx, repo, filepath.Join(im.TestDir, testBinaryName(p)), true, "./"+p.Dir); err != nil {
				if ctx.Err() != nil {
					return 1, ctx.Err()
				}
				buildErr[p.ImportPath] = err.Error()
			}
		}
		im.Tests = tests
		logf("built %d test binaries (%d did not build); not in the VM: %d", len(tests)-len(buildErr), len(buildErr), len(notInVM))
	}

	im.Rootfs, err = rootfs(repo, tmp)
	if err != nil {
		return 1, err
	}
	initrd := filepath.Join(tmp, "initramfs.cpio")
	size, err := im.write(initrd)
	if err != nil {
		return 1, fmt.Errorf("initramfs: %w", err)
	}

	v := vm{Kernel: k, Initrd: initrd, SMP: *flagSMP, Timeout: *flagTimeout, Shell: *flagShell, MemMB: *flagMem}
	if v.MemMB == 0 {
		v.MemMB = memFor(size)
	}
	switch *flagAccel {
	case "kvm":
		v.KVM = true
	case "tcg":
	case "auto":
		ok, why := kvmFast()
		v.KVM = ok
		logf("accelerator: %s (%s)", map[bool]string{true: "kvm", false: "tcg"}[ok], why)
	default:
		return 1, fmt.Errorf("-accel %q: want tcg, kvm or auto", *flagAccel)
	}
	logf("initramfs %.1f MiB, guest memory %d MiB, %d CPUs; set-up took %.1fs", float64(size)/(1<<20), v.MemMB, v.SMP, time.Since(start).Seconds())

	if *flagShell {
		v.Append = append(v.Append, "vmtest.shell=1")
		v.Append = append(v.Append, terminalArgs()...)
		logf("booting; 'exit' in the shell powers the VM off (Ctrl-A X kills it)")
		res, err := v.run(ctx, os.Stdout)
		logf("VM ran %.1fs", res.Wall.Seconds())
		return 0, err
	}
	if *flagRun != "" {
		if strings.ContainsAny(*flagRun, " \t\"'") {
			return 1, fmt.Errorf("-run %q: no spaces or quotes (it travels on the kernel command line)", *flagRun)
		}
		v.Append = append(v.Append, "vmtest.run="+*flagRun)
	}

	if err := os.MkdirAll(out, 0o755); err != nil {
		return 1, err
	}
	v.Results = filepath.Join(out, "vm-test.json")
	os.Remove(v.Results)
	os.Remove(filepath.Join(out, "run.json"))
	logPath := filepath.Join(out, "console.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return 1, err
	}
	defer logFile.Close()
	var console io.Writer = io.MultiWriter(logFile, prefixWriter{os.Stderr, "vm| "})
	stopTail := tailEvents(v.Results, *flagVerbose)
	res, runErr := v.run(ctx, console)
	stopTail()
	guestUp := ""
	if res.Done {
		guestUp = fmt.Sprintf(" (guest uptime at the end %ss)", res.Uptime)
	}
	logf("boot to poweroff: %.1fs wall%s; whole run %.1fs", res.Wall.Seconds(), guestUp, time.Since(start).Seconds())

	rec := runRecord{NotInVM: notInVM, BuildErr: buildErr, GuestLabel: fmt.Sprintf("VM: cgroup v2, %s", k.Release),
		ConsoleLog: logPath, Events: v.Results}
	for _, p := range tests {
		rec.Want = append(rec.Want, p.ImportPath)
	}
	switch {
	case runErr != nil:
		rec.Error = runErr.Error()
	case res.DebugExit < 0 || !res.Done:
		rec.Error = fmt.Sprintf("the VM powered off without finishing the tests (kernel panic or /init failure: see %s)", logPath)
	case res.DebugExit != 0:
		rec.Error = "FAIL in the VM"
	}
	if err := rec.save(filepath.Join(out, "run.json")); err != nil {
		return 1, err
	}
	return report(out, *flagHostJSON)
}

// A runRecord is what a VM run leaves in -out beside its events, so that
// -summary can print the table again later (after the host suite, say).
type runRecord struct {
	Want       []string          // packages run in the VM
	NotInVM    map[string]string // package -> why not
	BuildErr   map[string]string // package -> go test -c's error
	GuestLabel string
	ConsoleLog string
	Events     string
	Error      string // the run itself failed: panic, timeout, debug-exit code
}

func (r runRecord) save(file string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, append(b, '\n'), 0o644)
}

// report prints the side-by-side table of the last VM run in out and the
// host run's events, and says whether the VM run passed.
func report(out, hostJSON string) (int, error) {
	var rec runRecord
	b, err := os.ReadFile(filepath.Join(out, "run.json"))
	if err != nil {
		return 1, fmt.Errorf("no VM run to report on (%v): run make vm-test", err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return 1, fmt.Errorf("%s: %w", filepath.Join(out, "run.json"), err)
	}
	guest, _ := readResults(rec.Events)
	var host results
	if hostJSON != "" {
		if host, err = readResults(hostJSON); err != nil {
			logf("no host results: %v", err)
			host = nil
		}
	}
	hostLabel := fmt.Sprintf("host: %s, %s", cgroupMode(), kernelRelease())
	if fi, err := os.Stat(hostJSON); err == nil && host != nil {
		logf("host results: %s, written %s ago", hostJSON, time.Since(fi.ModTime()).Round(time.Second))
	}
	bad := summary(os.Stdout, host, hostLabel, guest, rec.GuestLabel, rec.Want, rec.NotInVM, rec.BuildErr)
	logf("console log %s, test events %s", rec.ConsoleLog, rec.Events)
	switch {
	case rec.Error != "" && len(bad) > 0:
		return 1, fmt.Errorf("%s: %s", rec.Error, strings.Join(bad, " "))
	case rec.Error != "":
		return 1, errors.New(rec.Error)
	case len(bad) > 0:
		return 1, fmt.Errorf("FAIL in the VM: %s", strings.Join(bad, " "))
	}
	fmt.Println("vmtest: ok, every package passed in the VM")
	fmt.Println(totals(host, guest))
	return 0, nil
}

// totals is the closing line: every top-level test of both runs, counted
// the way CI reads a plain summary ("total: N passed, N failed, N skipped").
func totals(sides ...results) string {
	var pass, fail, skip int
	for _, r := range sides {
		for _, p := range r {
			pass, fail, skip = pass+p.Pass, fail+p.Fail, skip+p.Skip
		}
	}
	return fmt.Sprintf("total: %d passed, %d failed, %d skipped", pass, fail, skip)
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run vmtest inside the berth source tree")
	}
	return filepath.Dir(mod), nil
}

// rootfs is the busybox tree the containers use: the host's (what make
// rootfs built), or one built now into the temporary directory.
func rootfs(repo, tmp string) (string, error) {
	p := os.Getenv("BERTH_ROOTFS")
	if p == "" {
		p = "/var/lib/berth/busybox"
	}
	if _, err := os.Stat(filepath.Join(p, "bin", "busybox")); err == nil {
		return p, nil
	}
	p = filepath.Join(tmp, "rootfs")
	logf("no busybox rootfs on the host: building one for the VM")
	return p, run(repo, "scripts/rootfs.sh", p)
}

// memFor sizes guest memory: the initramfs is in RAM twice while the
// kernel unpacks it, then once, beside the RAM disk (/tmp) and the tests'
// own use: 3 GiB, for stage 09's 50 containers started at once (each a
// create process, an init and a monitor; with 1 GiB the guest reclaimed
// memory until the test timed out). QEMU takes from the host only what the
// guest touches.
func memFor(initrd int64) int {
	mb := int(2*initrd>>20) + 3072
	mb = (mb + 255) / 256 * 256
	return max(mb, 1536)
}

// terminalArgs passes the terminal's size and type to the guest's shell.
func terminalArgs() []string {
	var a []string
	cmd := exec.Command("stty", "size")
	cmd.Stdin = os.Stdin
	if out, err := cmd.Output(); err == nil {
		if f := strings.Fields(string(out)); len(f) == 2 {
			a = append(a, "vmtest.rows="+f[0], "vmtest.cols="+f[1])
		}
	}
	if t := os.Getenv("TERM"); t != "" && !strings.ContainsAny(t, " \t\"'") {
		a = append(a, "vmtest.term="+t)
	}
	return a
}

// prefixWriter prefixes each line (the VM's console) for the terminal.
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	s := strings.TrimSuffix(string(b), "\n")
	s = p.prefix + strings.ReplaceAll(s, "\n", "\n"+p.prefix) + "\n"
	if _, err := io.WriteString(p.w, s); err != nil {
		return 0, err
	}
	return len(b), nil
}
