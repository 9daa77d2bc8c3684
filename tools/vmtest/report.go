package main

// Results on both sides are `go test -json` event streams (test2json's
// format): the host's from the host suite's run, the guest's from ttyS1.
// Counting the same way on both gives the side-by-side table.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

// A pkgResult is one package's outcome on one side.
type pkgResult struct {
	Result           string // pass, fail, skip (no tests), "" (never finished)
	Pass, Fail, Skip int    // top-level tests
	Elapsed          float64
	Failed           []string // failed tests, subtests included
	out              map[string]*strings.Builder
	pkgOut           strings.Builder
}

type results map[string]*pkgResult

func (r results) get(pkg string) *pkgResult {
	p := r[pkg]
	if p == nil {
		p = &pkgResult{out: map[string]*strings.Builder{}}
		r[pkg] = p
	}
	return p
}

// parseEvents reads a go test -json stream; lines that are not events
// (build errors printed around them) are kept with no package.
func parseEvents(rd io.Reader, r results) error {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		var e event
		if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &e) != nil || e.Package == "" {
			if strings.TrimSpace(line) != "" {
				r.get("").pkgOut.WriteString(line + "\n")
			}
			continue
		}
		p := r.get(e.Package)
		if e.Test == "" {
			switch e.Action {
			case "output", "build-output":
				p.pkgOut.WriteString(e.Output)
			case "pass", "fail", "skip":
				p.Result, p.Elapsed = e.Action, e.Elapsed
			}
			continue
		}
		switch e.Action {
		case "output":
			b := p.out[e.Test]
			if b == nil {
				b = &strings.Builder{}
				p.out[e.Test] = b
			}
			b.WriteString(e.Output)
		case "pass", "fail", "skip":
			if e.Action == "fail" {
				p.Failed = append(p.Failed, e.Test)
			}
			if strings.Contains(e.Test, "/") {
				continue
			}
			switch e.Action {
			case "pass":
				p.Pass++
			case "fail":
				p.Fail++
			case "skip":
				p.Skip++
			}
		}
	}
	return sc.Err()
}

func readResults(file string) (results, error) {
	r := results{}
	f, err := os.Open(file)
	if err != nil {
		return r, err
	}
	defer f.Close()
	return r, parseEvents(f, r)
}

// cell is one side's column: "ok  12 pass 0 fail 1 skip  3.4s".
func cell(p *pkgResult, note string) string {
	if p == nil {
		if note != "" {
			return note
		}
		return "-"
	}
	word := map[string]string{"pass": "ok", "fail": "FAIL", "skip": "no tests", "": "INCOMPLETE"}[p.Result]
	return fmt.Sprintf("%-10s %3d pass %2d fail %2d skip %6.1fs", word, p.Pass, p.Fail, p.Skip, p.Elapsed)
}

// summary prints the table and the failures' output; it returns the
// packages that did not pass in the guest.
func summary(w io.Writer, host results, hostLabel string, guest results, guestLabel string, want []string, notInVM map[string]string, buildErr map[string]string) []string {
	pkgs := map[string]bool{}
	for _, p := range want {
		pkgs[p] = true
	}
	for p := range notInVM {
		pkgs[p] = true
	}
	for p := range host {
		if p != "" && host[p].Result != "skip" {
			pkgs[p] = true
		}
	}
	var names []string
	width := len("package")
	for p := range pkgs {
		names = append(names, p)
		width = max(width, len(p))
	}
	sort.Strings(names)
	colw := len(cell(&pkgResult{}, ""))
	fmt.Fprintf(w, "\n%-*s  %-*s  %s\n", width, "package", colw, hostLabel, guestLabel)
	var bad []string
	inVM := map[string]bool{}
	for _, p := range want {
		inVM[p] = true
	}
	for _, name := range names {
		var hc *pkgResult
		if host != nil {
			hc = host[name]
		}
		var gc string
		switch {
		case notInVM[name] != "":
			gc = "not run: " + notInVM[name]
		case buildErr[name] != "":
			gc = "FAIL (test binary did not build)"
			bad = append(bad, name)
		case !inVM[name]:
			gc = "-"
		default:
			g := guest[name]
			gc = cell(g, "INCOMPLETE (no result)")
			if g == nil || g.Result != "pass" && g.Result != "skip" {
				bad = append(bad, name)
			}
		}
		hn := "not run"
		if host == nil {
			hn = "no host results"
		}
		fmt.Fprintf(w, "%-*s  %-*s  %s\n", width, name, colw, cell(hc, hn), gc)
	}
	for _, name := range bad {
		fmt.Fprintf(w, "\n--- VM: %s\n", name)
		if e := buildErr[name]; e != "" {
			fmt.Fprintln(w, e)
			continue
		}
		g := guest[name]
		if g == nil {
			fmt.Fprintln(w, "no result: the VM stopped before this package ran to the end (see the console log)")
			continue
		}
		for _, t := range g.Failed {
			if b := g.out[t]; b != nil {
				fmt.Fprint(w, b.String())
			}
		}
		if len(g.Failed) == 0 || g.Result == "" {
			fmt.Fprint(w, g.pkgOut.String())
		}
	}
	return bad
}

// cgroupMode describes the host's cgroup setup for the column header.
func cgroupMode() string {
	var st syscall.Statfs_t
	if err := syscall.Statfs("/sys/fs/cgroup", &st); err != nil {
		return "cgroup ?"
	}
	if st.Type == 0x63677270 { // CGROUP2_SUPER_MAGIC
		return "cgroup v2"
	}
	if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.controllers"); err == nil {
		return "cgroup v1 hybrid"
	}
	return "cgroup v1"
}

func kernelRelease() string {
	var u syscall.Utsname
	if syscall.Uname(&u) != nil {
		return "?"
	}
	var b strings.Builder
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	return b.String()
}

// tailEvents follows the guest's event file while the VM runs and prints
// the tests' output as it comes (with -v), or only the failures. The
// returned function stops it after a last read.
func tailEvents(file string, verbose bool) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var off int64
		var partial string
		read := func() {
			f, err := os.Open(file)
			if err != nil {
				return
			}
			defer f.Close()
			if _, err := f.Seek(off, io.SeekStart); err != nil {
				return
			}
			b, _ := io.ReadAll(f)
			off += int64(len(b))
			lines := strings.Split(partial+string(b), "\n")
			partial = lines[len(lines)-1]
			for _, line := range lines[:len(lines)-1] {
				var e event
				if json.Unmarshal([]byte(strings.TrimRight(line, "\r")), &e) != nil {
					continue
				}
				switch {
				case verbose && e.Action == "output":
					fmt.Fprint(os.Stderr, "vm> "+e.Output)
				case !verbose && e.Action == "fail" && e.Test != "":
					fmt.Fprintf(os.Stderr, "vm> --- FAIL: %s (%s)\n", e.Test, e.Package)
				}
			}
		}
		for {
			select {
			case <-done:
				read()
				return
			case <-time.After(250 * time.Millisecond):
				read()
			}
		}
	}()
	return func() { close(done); <-finished }
}

// format reads a go test -json stream and prints, as it comes, what go
// test prints without -v: a line per package, and the output of the tests
// that fail. So make test can keep the events for the side-by-side table
// and still show the usual output. It reports whether anything failed.
func format(rd io.Reader, w io.Writer) (failed bool, err error) {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	out := map[string]*strings.Builder{} // package + test -> its output
	for sc.Scan() {
		line := sc.Text()
		var e event
		if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &e) != nil || e.Action == "" {
			fmt.Fprintln(w, line)
			continue
		}
		key := e.Package + " " + e.Test
		switch {
		case e.Test == "" && (e.Action == "output" || e.Action == "build-output"):
			if e.Output != "PASS\n" {
				fmt.Fprint(w, e.Output)
			}
		case e.Action == "output":
			if strings.HasPrefix(e.Output, "=== ") {
				continue
			}
			b := out[key]
			if b == nil {
				b = &strings.Builder{}
				out[key] = b
			}
			b.WriteString(e.Output)
		case e.Action == "fail" || e.Action == "build-fail":
			failed = true
			if b := out[key]; b != nil {
				fmt.Fprint(w, b.String())
			}
			delete(out, key)
		case e.Action == "pass" || e.Action == "skip":
			delete(out, key)
		}
	}
	return failed, sc.Err()
}
