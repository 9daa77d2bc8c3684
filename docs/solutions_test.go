//go:build linux

package docs

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"berth/internal/testenv"
)

// TestSolutions keeps the exercises from rotting. Every exercise has a
// check (docs/exercises, TestExerciseNN_K) and a reference solution
// (docs/solutions/NN-K.patch), and for each chapter (TestSolutions/NN):
//
//   - every check fails on this tree, with no answer written: a check
//     that passes before the exercise is done checks nothing;
//   - every check passes on a scratch copy of this tree with its solution
//     applied. The solutions of one chapter share a copy where their
//     patches apply together, so the stages are built once per chapter.
//
// It needs root (the checks run containers) and go.
func TestSolutions(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.Rootfs(t)
	root := testenv.RepoRoot()
	goCmd := goTool()

	patches, _ := filepath.Glob(filepath.Join(root, "docs", "solutions", "*.patch"))
	solutions := map[string]string{} // "01-2" -> patch
	for _, p := range patches {
		solutions[strings.TrimSuffix(filepath.Base(p), ".patch")] = p
	}

	tmp := t.TempDir()
	start := time.Now()
	checks := filepath.Join(tmp, "checks.test")
	compileChecks(t, goCmd, root, checks)
	out, err := exec.Command(checks, "-test.list", "^TestExercise").Output()
	if err != nil {
		t.Fatalf("list the checks: %v", err)
	}
	chapters := map[string][]string{} // "01" -> ["01-1", ...]
	for _, name := range strings.Fields(string(out)) {
		ex := exerciseOf(name)
		if ex == "" {
			t.Errorf("%s: name checks TestExerciseNN_K", name)
			continue
		}
		chapters[ex[:2]] = append(chapters[ex[:2]], ex)
		if solutions[ex] == "" {
			t.Errorf("exercise %s has a check and no solution: add docs/solutions/%s.patch", ex, ex)
		}
	}
	for ex := range solutions {
		if !contains(chapters[ex[:2]], ex) {
			t.Errorf("docs/solutions/%s.patch has no check: add TestExercise%s_%s to docs/exercises", ex, ex[:2], ex[3:])
		}
	}
	t.Logf("compiled the checks in %v", time.Since(start).Round(time.Millisecond))

	names := make([]string, 0, len(chapters))
	for ch := range chapters {
		names = append(names, ch)
	}
	sort.Strings(names)
	for _, ch := range names {
		exs := chapters[ch]
		sort.Slice(exs, func(i, j int) bool { return exerciseLess(exs[i], exs[j]) })
		t.Run(ch, func(t *testing.T) {
			proveChapter(t, goCmd, root, checks, exs, solutions)
		})
	}
}

func proveChapter(t *testing.T, goCmd, root, checks string, exs []string, solutions map[string]string) {
	// Untouched: this tree's checks and binaries, and an empty answers
	// directory (a learner's own answers/ is not looked at).
	start := time.Now()
	empty := t.TempDir()
	env := []string{"BERTH_SRC=" + empty}
	results := runChecks(t, checks, filepath.Join(root, "docs", "exercises"), env, exs)
	for _, ex := range exs {
		r := results[ex]
		switch r.verdict {
		case "FAIL":
		case "SKIP":
			t.Logf("%s: the check skips on this machine, untouched: %s", ex, r.output)
		default:
			t.Errorf("%s: the check %s on this tree, before the exercise is done: it checks nothing "+
				"(or this tree already holds the exercise: make test proves the checks on a clean checkout)\n%s", ex, verdictWord(r.verdict), r.output)
		}
	}
	t.Logf("untouched: %d checks failed as they must, in %v", len(exs), time.Since(start).Round(time.Millisecond))

	// Solved: scratch copies, as few as the patches allow.
	type group struct {
		dir string
		exs []string
	}
	var groups []*group
	for _, ex := range exs {
		patch := solutions[ex]
		if patch == "" {
			continue
		}
		placed := false
		for _, g := range groups {
			if gitApply(g.dir, patch, true) == nil {
				if err := gitApply(g.dir, patch, false); err != nil {
					t.Fatalf("%s: %v", ex, err)
				}
				g.exs = append(g.exs, ex)
				placed = true
				break
			}
		}
		if placed {
			continue
		}
		g := &group{dir: scratchCopy(t, root)}
		if err := gitApply(g.dir, patch, false); err != nil {
			t.Errorf("%s: docs/solutions/%s.patch does not apply to this tree: %v", ex, ex, err)
			continue
		}
		g.exs = []string{ex}
		groups = append(groups, g)
	}
	for _, g := range groups {
		start := time.Now()
		bin := filepath.Join(g.dir, "tmp", "checks.test")
		compileChecks(t, goCmd, g.dir, bin)
		// The stages are built from the copy by the checks themselves
		// (testenv.Binary), into its own tmp/.
		env := []string{"TMPDIR=" + filepath.Join(g.dir, "tmp"), "BERTH_BIN="}
		results := runChecks(t, bin, filepath.Join(g.dir, "docs", "exercises"), env, g.exs)
		for _, ex := range g.exs {
			r := results[ex]
			switch r.verdict {
			case "PASS":
			case "SKIP":
				t.Logf("%s: the check skips on this machine, solved: %s", ex, r.output)
			default:
				t.Errorf("%s: the check %s with docs/solutions/%s.patch applied:\n%s", ex, verdictWord(r.verdict), ex, r.output)
			}
		}
		t.Logf("solved %s: one copy, in %v", strings.Join(g.exs, " "), time.Since(start).Round(time.Millisecond))
	}
}

type checkResult struct {
	verdict string // PASS, FAIL, SKIP, or "" when the check never reported
	output  string
}

// runChecks runs the checks of exs in one process (so that each stage is
// built once) and returns each one's verdict and output.
func runChecks(t *testing.T, bin, dir string, env, exs []string) map[string]checkResult {
	t.Helper()
	var names []string
	for _, ex := range exs {
		names = append(names, "TestExercise"+ex[:2]+"_"+ex[3:])
	}
	cmd := exec.Command(bin, "-test.v", "-test.count=1", "-test.timeout=20m", "-test.run", "^("+strings.Join(names, "|")+")$")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, _ := cmd.CombinedOutput() // the verdicts are in the output
	results := map[string]checkResult{}
	var cur string
	var buf strings.Builder
	resultRE := regexp.MustCompile(`^--- (PASS|FAIL|SKIP): (TestExercise\d\d_\d+) `)
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "=== RUN   "); ok {
			cur = exerciseOf(name)
			buf.Reset()
			continue
		}
		if m := resultRE.FindStringSubmatch(line); m != nil {
			results[exerciseOf(m[2])] = checkResult{verdict: m[1], output: buf.String()}
			cur = ""
			continue
		}
		if cur != "" {
			buf.WriteString(line + "\n")
		}
	}
	for _, ex := range exs {
		if _, ok := results[ex]; !ok {
			results[ex] = checkResult{output: string(out)}
		}
	}
	return results
}

func verdictWord(v string) string {
	switch v {
	case "PASS":
		return "passes"
	case "FAIL":
		return "fails"
	}
	return "never reports (crashed or timed out)"
}

var exerciseRE = regexp.MustCompile(`^TestExercise(\d\d)_(\d+)$`)

// exerciseOf turns TestExercise01_2 into "01-2".
func exerciseOf(test string) string {
	m := exerciseRE.FindStringSubmatch(test)
	if m == nil {
		return ""
	}
	return m[1] + "-" + m[2]
}

func exerciseLess(a, b string) bool {
	var ca, ka, cb, kb int
	fmt.Sscanf(a, "%d-%d", &ca, &ka)
	fmt.Sscanf(b, "%d-%d", &cb, &kb)
	return ca < cb || ca == cb && ka < kb
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

func compileChecks(t *testing.T, goCmd, dir, out string) {
	t.Helper()
	cmd := exec.Command(goCmd, "test", "-c", "-tags", "exercise", "-o", out, "./docs/exercises")
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go test -c -tags exercise ./docs/exercises in %s: %v\n%s", dir, err, b)
	}
}

// scratchCopy copies the tree, without .git, the built binaries, tmp/
// and a learner's answers/, into a directory the test removes.
func scratchCopy(t *testing.T, root string) string {
	t.Helper()
	// Not t.TempDir: the rootless checks run as a test account, which
	// must reach the copy, and t.TempDir's parent is 0700.
	dir, err := os.MkdirTemp("", "berth-solutions-")
	if err != nil {
		t.Fatal(err)
	}
	// --one-file-system: never into something a failed check left
	// mounted there (an overlay, a volume's bind mount).
	t.Cleanup(func() { _ = exec.Command("rm", "-rf", "--one-file-system", dir).Run() })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", `tar -C "$1" --exclude=./.git --exclude=./bin --exclude=./tmp --exclude=./answers --exclude=./bench/results -cf - . | tar -C "$2" -xf -`, "sh", root, dir)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("copy %s to %s: %v\n%s", root, dir, err, b)
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// gitApply applies a patch to a directory that need not be a repository
// (git apply then works as patch(1) does); with check, it only tries.
func gitApply(dir, patch string, check bool) error {
	args := []string{"apply"}
	if check {
		args = append(args, "--check")
	}
	cmd := exec.Command("git", append(args, patch)...)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("git apply %s: %v\n%s", filepath.Base(patch), err, b)
	}
	return nil
}
