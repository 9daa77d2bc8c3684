package main

// What goes into the guest is found, not listed: every top-level stage
// command (NN-name/main.go) and every package that has tests at the time
// of the run, so a new stage's tests run on cgroup v2 without touching
// the harness.

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// A goPackage is one line of go list.
type goPackage struct {
	ImportPath string
	Dir        string // relative to the repo root
}

// hostOnly are test packages that do not run in the guest, and why.
var hostOnly = []struct{ re, why string }{
	{`^berth/tools/vmtest$`, "the harness's own unit tests (a host tool)"},
	{`^berth/docs$`, "the docs runner needs bash and the repo tree"},
}

var stageDir = regexp.MustCompile(`^[0-9][0-9]-[^/]+$`)

func goList(repo string, format string) ([]goPackage, error) {
	cmd := exec.Command("go", "list", "-e", "-f", format, "./...")
	cmd.Dir = repo
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list ./...: %v\n%s", err, stderr.String())
	}
	var pkgs []goPackage
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		ip, dir, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		rel, err := filepath.Rel(repo, dir)
		if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, goPackage{ImportPath: ip, Dir: filepath.ToSlash(rel)})
	}
	return pkgs, nil
}

// commands lists the stage commands (NN-name) and the helper programs
// tests build and run (any other main package outside tools/, such as
// 03-mount/breakout).
func commands(repo string) (stages, helpers []goPackage, err error) {
	all, err := goList(repo, `{{if eq .Name "main"}}{{.ImportPath}}{{"\t"}}{{.Dir}}{{end}}`)
	if err != nil {
		return nil, nil, err
	}
	for _, p := range all {
		switch {
		case stageDir.MatchString(p.Dir):
			stages = append(stages, p)
		case !strings.HasPrefix(p.Dir, "tools/"):
			helpers = append(helpers, p)
		}
	}
	return stages, helpers, nil
}

// helperEnv is the variable that gives a test a prebuilt helper in the
// VM, where there is no go to build it: 03-mount/breakout -> BERTH_BREAKOUT.
func helperEnv(p goPackage) string {
	return "BERTH_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(filepath.Base(p.Dir)))
}

// testPackages lists packages with tests, split into those that run in
// the guest and those kept on the host (import path -> reason).
func testPackages(repo string, exclude []string) (run []goPackage, skipped map[string]string, err error) {
	all, err := goList(repo, `{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{"\t"}}{{.Dir}}{{end}}`)
	if err != nil {
		return nil, nil, err
	}
	rules := hostOnly
	for _, e := range exclude {
		rules = append(rules, struct{ re, why string }{e, "excluded with -exclude"})
	}
	skipped = map[string]string{}
next:
	for _, p := range all {
		for _, r := range rules {
			re, err := regexp.Compile(r.re)
			if err != nil {
				return nil, nil, fmt.Errorf("-exclude %q: %w", r.re, err)
			}
			if re.MatchString(p.ImportPath) {
				skipped[p.ImportPath] = r.why
				continue next
			}
		}
		run = append(run, p)
	}
	return run, skipped, nil
}

// testBinaryName is the file name of a package's test binary in the guest.
func testBinaryName(p goPackage) string {
	return strings.ReplaceAll(p.Dir, "/", "_") + ".test"
}

// goBuild builds a static binary: CGO_ENABLED=0 unless the package needs
// cgo (a constructor such as runc's nsenter), then a static cgo build.
func goBuild(ctx context.Context, repo, out string, test bool, pkg string) error {
	args := []string{"build"}
	if test {
		args = []string{"test", "-c"}
	}
	env := append(os.Environ(), "CGO_ENABLED=0")
	ldflags := "-s -w" // file:line in failures comes from pclntab, which stays
	if needsCgo(repo, pkg) {
		env = append(os.Environ(), "CGO_ENABLED=1")
		args = append(args, "-tags", "netgo,osusergo")
		ldflags += " -linkmode external -extldflags -static"
	}
	args = append(args, "-ldflags", ldflags, "-o", out, pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repo
	cmd.Env = env
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, strings.TrimSpace(string(b)))
	}
	return checkStatic(out)
}

// needsCgo reports whether pkg or one of its non-standard dependencies has
// cgo files (with CGO_ENABLED=0 they would be left out silently).
func needsCgo(repo, pkg string) bool {
	cmd := exec.Command("go", "list", "-deps", "-test", "-tags", "netgo,osusergo",
		"-f", `{{if and (not .Standard) .CgoFiles}}{{.ImportPath}}{{end}}`, pkg)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	out, err := cmd.Output()
	return err == nil && len(bytes.TrimSpace(out)) > 0
}

// cHelpers are the programs in C, by directory.
var cHelpers = []string{"09-full/berth-monitor"}

// cBuild builds the monitor with the Makefile's own rule (`make monitor`),
// so the flags live in one place; static here, where the guest has no C
// library (make build links it dynamically, as conmon is).
func cBuild(ctx context.Context, repo, out string) error {
	cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "-s", "monitor", "MONITOR_OUT="+out, "MONITOR_LINK=-static", "BUILD_AS=root")
	cmd.Dir = repo
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("make monitor: %v\n%s", err, strings.TrimSpace(string(b)))
	}
	return checkStatic(out)
}

// checkStatic refuses a dynamically linked binary: the guest has no libc.
func checkStatic(file string) error {
	f, err := elf.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked; the guest has no shared libraries", file)
		}
	}
	return nil
}
