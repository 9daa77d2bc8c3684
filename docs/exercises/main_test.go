//go:build exercise && linux

package exercises

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"berth/internal/testenv"
)

// standinEnv marks the re-executed test binary, inside its own network
// namespace: a stand-in host with only lo, as make test's. No check, right
// or wrong, can reach or change the real host's network.
const standinEnv = "BERTH_EXERCISE_STANDIN"

func TestMain(m *testing.M) {
	if os.Geteuid() == 0 && os.Getenv(standinEnv) == "" {
		cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
		cmd.Env = append(os.Environ(), standinEnv+"=1")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			os.Exit(ee.ExitCode())
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "re-run the checks in a new network namespace: %v\n", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	if os.Getenv(standinEnv) != "" {
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "bring lo up in the stand-in host: %v\n%s", err, out)
			os.Exit(2)
		}
	}
	os.Exit(m.Run())
}

// repo is the checkout the checks look at: $BERTH_SRC, or the tree this
// package is in (go test runs a test binary in its package's directory).
func repo(t *testing.T) string {
	t.Helper()
	if r := os.Getenv("BERTH_SRC"); r != "" {
		return r
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	r := filepath.Clean(filepath.Join(wd, "..", ".."))
	if _, err := os.Stat(filepath.Join(r, "go.mod")); err != nil {
		t.Fatalf("run the checks from docs/exercises, or set BERTH_SRC to the checkout (%v)", err)
	}
	return r
}

// chapterOf names the chapter that holds exercise "NN-K", for messages.
// A stage's exercises may span several chapters (stage 08's four number
// theirs on from one to the next): the one whose Exercises list has an
// item K.
func chapterOf(ex string) string {
	nn, k, _ := strings.Cut(ex, "-")
	files, _ := filepath.Glob(filepath.Join("..", nn+"-*.md"))
	if len(files) == 1 {
		return "docs/" + filepath.Base(files[0])
	}
	item := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(k) + `\. `)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if _, list, ok := strings.Cut(string(b), "\n## Exercises\n"); ok && item.MatchString(list) {
			return "docs/" + filepath.Base(f)
		}
	}
	return "chapter " + nn
}

// answer returns the lines of answers/EX/answer, without blank lines and
// notes (lines starting with #), each trimmed. It fails the check, saying
// where the answer goes, when the file is missing or has fewer than want
// lines.
func answer(t *testing.T, ex string, want int) []string {
	t.Helper()
	p := filepath.Join(repo(t), "answers", ex, "answer")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("no answer yet: write it in answers/%s/answer, %d line(s), as %s says in exercise %s", ex, want, chapterOf(ex), ex[3:])
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		lines = append(lines, l)
	}
	if len(lines) < want {
		t.Fatalf("answers/%s/answer has %d line(s) of answer; exercise %s of %s asks for %d", ex, len(lines), ex[3:], chapterOf(ex), want)
	}
	return lines
}

// program builds the learner's program in answers/EX (package main) and
// returns its path.
func program(t *testing.T, ex string) string {
	t.Helper()
	dir := filepath.Join(repo(t), "answers", ex)
	if m, _ := filepath.Glob(filepath.Join(dir, "*.go")); len(m) == 0 {
		t.Fatalf("no program yet: write it in answers/%s/ (package main), as %s says in exercise %s", ex, chapterOf(ex), ex[3:])
	}
	out := filepath.Join(t.TempDir(), "ex"+ex)
	goCmd := "go"
	if _, err := exec.LookPath(goCmd); err != nil {
		goCmd = "/usr/local/go/bin/go"
	}
	cmd := exec.Command(goCmd, "build", "-o", out, "./answers/"+ex)
	cmd.Dir = repo(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./answers/%s: %v\n%s", ex, err, b)
	}
	return out
}

// bin is a stage binary of this checkout (testenv.Binary: $BERTH_BIN, or
// built from the current sources).
func bin(t *testing.T, stage string) string {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.Rootfs(t)
	return testenv.Binary(t, stage)
}

// same reports whether an answer says the same as the truth, ignoring
// case and surrounding spaces.
func same(answer, truth string) bool {
	return strings.EqualFold(strings.TrimSpace(answer), strings.TrimSpace(truth))
}

// words returns the words of s, lower-cased: for answers that list names
// in any order.
func words(s string) map[string]bool {
	out := map[string]bool{}
	for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return r == ' ' || r == ',' || r == '\t' || r == '|'
	}) {
		out[w] = true
	}
	return out
}

// needFlag fails the check at once when the stage has no such flag yet: a
// code change the exercise asks for, not done.
func needFlag(t *testing.T, stage, b, flag string) {
	t.Helper()
	needVerbFlag(t, stage, b, "run", flag)
}

// needVerbFlag is needFlag for another verb than run (images, build...).
func needVerbFlag(t *testing.T, stage, b, verb, flag string) {
	t.Helper()
	r := testenv.Run(t, nil, b, verb, "--help")
	if !regexp.MustCompile(`(?m)^\s*(-\w, )?` + regexp.QuoteMeta(flag) + `\b`).MatchString(r.Stdout + r.Stderr) {
		t.Fatalf("bin/%s %s has no %s flag yet (bin/%s %s --help does not list it): make the change the exercise asks for, then check again", stage, verb, flag, stage, verb)
	}
}
