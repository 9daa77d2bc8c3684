//go:build linux

// Package docs holds the book; its tests keep the chapters true to the
// code: every `console run` block runs and must print what the chapter
// shows, and every file and function a chapter names must exist.
package docs

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"berth/internal/doccheck"
	"berth/internal/testenv"
)

func chapters(t *testing.T) (root string, files []string) {
	t.Helper()
	root = testenv.RepoRoot()
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no chapters in %s/docs (%v)", root, err)
	}
	return root, files
}

// TestChapters runs every runnable block of every chapter, one subtest per
// block named after its place (TestChapters/01-uts.md:42), as root, from
// the repository root, each in a fresh network namespace.
func TestChapters(t *testing.T) {
	root, files := chapters(t)
	type chapter struct {
		name   string
		blocks []doccheck.Block
	}
	var all []chapter
	total := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		blocks, err := doccheck.Parse(rel, src)
		if err != nil {
			t.Error(err) // a malformed block fails even without root
			continue
		}
		all = append(all, chapter{filepath.Base(f), blocks})
		total += len(blocks)
	}
	if total == 0 {
		return
	}
	testenv.RequireRoot(t)
	for _, tool := range []string{"bash", "unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the chapters need %s: run sudo make setup", tool)
		}
	}
	buildStages(t, root)
	testenv.Rootfs(t)

	runner := doccheck.ChapterRunner(root)
	for _, ch := range all {
		for _, b := range ch.blocks {
			t.Run(fmt.Sprintf("%s:%d", ch.name, b.Line), func(t *testing.T) {
				for _, f := range runner.Check(b) {
					t.Error(f)
				}
			})
		}
	}
}

// buildStages makes sure <repo>/bin holds current binaries, since the
// chapters call them as bin/NN-name. make test has just built them there
// and says so with BERTH_BIN; otherwise build them (go build is
// incremental, so this is quick when nothing changed).
func buildStages(t *testing.T, root string) {
	t.Helper()
	bin := filepath.Join(root, "bin")
	if dir := os.Getenv("BERTH_BIN"); dir != "" {
		if abs, err := filepath.Abs(dir); err == nil && abs == bin {
			return
		}
	}
	mains, _ := filepath.Glob(filepath.Join(root, "[0-9][0-9]-*", "main.go"))
	args := []string{"build", "-o", bin + "/"}
	for _, m := range mains {
		args = append(args, "./"+filepath.Base(filepath.Dir(m)))
	}
	goCmd := "go"
	if _, err := exec.LookPath(goCmd); err != nil {
		goCmd = "/usr/local/go/bin/go"
	}
	cmd := exec.Command(goCmd, args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// A code reference in a chapter: `01-uts/uts/uts.go` or
// `01-uts/uts/uts.go:Step.Child` (a function, Type.Method, type, var or
// const declared in that file).
var refRE = regexp.MustCompile("`((?:[0-9]{2}-[a-z0-9-]+|internal|scripts|bench|docs)/[^`\\s:]*)(?::([A-Za-z_][A-Za-z0-9_]*(?:\\.[A-Za-z_][A-Za-z0-9_]*)?))?`")

// A relative Markdown link: [text](path) or [text](path#anchor).
var linkRE = regexp.MustCompile(`\]\(([^)\s#]+)(?:#[^)]*)?\)`)

// A link to a chapter, named like its stage folder: NN-name.md.
var chapterRE = regexp.MustCompile(`(?:^|/)([0-9]{2})-[a-z0-9-]+\.md$`)

// TestEveryStageHasAChapter: a stage comes with its chapter, as the README
// promises. Needs no root.
func TestEveryStageHasAChapter(t *testing.T) {
	root := testenv.RepoRoot()
	mains, _ := filepath.Glob(filepath.Join(root, "[0-9][0-9]-*", "main.go"))
	for _, m := range mains {
		stage := filepath.Base(filepath.Dir(m))
		if _, err := os.Stat(filepath.Join(root, "docs", stage+".md")); err != nil {
			t.Errorf("stage %s has no chapter: write docs/%s.md (docs/contributing.md says how)", stage, stage)
		}
	}
}

// TestReferences checks that the files, functions and links the chapters
// and the README name exist, so a renamed function cannot leave a chapter
// pointing at nothing. Needs no root.
func TestReferences(t *testing.T) {
	root, files := chapters(t)
	files = append(files, filepath.Join(root, "README.md"))
	decls := map[string]map[string]bool{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		for n, line := range strings.Split(string(src), "\n") {
			at := fmt.Sprintf("%s:%d", rel, n+1)
			for _, m := range refRE.FindAllStringSubmatch(line, -1) {
				path, name := m[1], m[2]
				full := filepath.Join(root, path)
				if _, err := os.Stat(full); err != nil {
					t.Errorf("%s: names %s, which does not exist", at, path)
					continue
				}
				if name == "" {
					continue
				}
				isC := strings.HasSuffix(path, ".c")
				if !strings.HasSuffix(path, ".go") && !isC {
					t.Errorf("%s: %s:%s: only Go and C files have declarations to name", at, path, name)
					continue
				}
				if decls[full] == nil && isC {
					decls[full] = cFunctions(t, full)
				} else if decls[full] == nil {
					decls[full] = declarations(t, full)
				}
				if !decls[full][name] {
					t.Errorf("%s: names %s:%s, which %s does not declare", at, path, name, path)
				}
			}
			for _, m := range linkRE.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				if _, err := os.Stat(filepath.Join(filepath.Dir(f), target)); err != nil {
					// The stage table links every chapter, written or not
					// (TestEveryStageHasAChapter asks for those that must
					// be); a link to a chapter whose number exists is a typo.
					if m := chapterRE.FindStringSubmatch(target); m != nil {
						if same, _ := filepath.Glob(filepath.Join(root, "docs", m[1]+"-*.md")); len(same) == 0 {
							continue
						}
					}
					t.Errorf("%s: links to %s, which does not exist", at, target)
				}
			}
		}
	}
}

// cFunction is the start of a C function's definition, at the start of a
// line as berth's C is written (09-full/berth-monitor): `static int
// name(...)` or `int main(...)`.
var cFunction = regexp.MustCompile(`(?m)^[A-Za-z_][A-Za-z0-9_ *]*?\b([A-Za-z_][A-Za-z0-9_]*)\(`)

// cFunctions lists the functions a C file defines.
func cFunctions(t *testing.T, path string) map[string]bool {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range cFunction.FindAllStringSubmatch(string(src), -1) {
		out[m[1]] = true
	}
	return out
}

// declarations lists what a Go file declares at top level: functions,
// methods as Type.Method, types, vars and consts.
func declarations(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	out := map[string]bool{}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil || len(d.Recv.List) == 0 {
				out[d.Name.Name] = true
				continue
			}
			typ := d.Recv.List[0].Type
			if s, ok := typ.(*ast.StarExpr); ok {
				typ = s.X
			}
			if ix, ok := typ.(*ast.IndexExpr); ok {
				typ = ix.X
			}
			if id, ok := typ.(*ast.Ident); ok {
				out[id.Name+"."+d.Name.Name] = true
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					out[s.Name.Name] = true
				case *ast.ValueSpec:
					for _, n := range s.Names {
						out[n.Name] = true
					}
				}
			}
		}
	}
	return out
}
