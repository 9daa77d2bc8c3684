//go:build linux

package build

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"golang.org/x/sys/unix"

	"berth/07-unionfs/tree"
	"berth/08-image/store"
)

// A Dockerfile is read by BuildKit's own parser (the one docker build
// uses): it knows line continuations, the escape directive, JSON (exec)
// form, comments and heredocs, which are not the lesson here. Its
// "instructions" package, which would also type each instruction, drags
// in much of BuildKit (LLB, platforms, linters), so the few shapes the
// parser leaves (a list of words, key/value pairs, flags) are read here.

// instruction is one Dockerfile instruction as the parser gave it.
type instruction struct {
	cmd      string   // upper case: RUN
	line     int      // where it starts in the Dockerfile
	original string   // the line as written, for "Step 2/5 : ..."
	flags    []string // --chown=1:1 (unexpanded)
	args     []string // the parser's words; ENV and LABEL: key, value, sep, key...
	json     bool     // exec form: ["a", "b"]
	heredoc  bool
	where    string // "Dockerfile line 3", or "--change" (import)
}

func (in instruction) errorf(format string, a ...any) error {
	return fmt.Errorf("%s: %s %s", in.where, in.cmd, fmt.Sprintf(format, a...))
}

// newInstruction reads one node of the parser's tree.
func newInstruction(n *parser.Node, where string) instruction {
	in := instruction{
		cmd: strings.ToUpper(n.Value), line: n.StartLine, original: n.Original,
		flags: n.Flags, json: n.Attributes["json"], heredoc: len(n.Heredocs) > 0, where: where,
	}
	for a := n.Next; a != nil; a = a.Next {
		in.args = append(in.args, a.Value)
	}
	return in
}

// stageDef is one FROM and what follows it, up to the next FROM.
type stageDef struct {
	name   string // after AS, lower case; "" if none
	from   instruction
	instrs []instruction
}

// dockerfile is a parsed Dockerfile: the ARGs before the first FROM
// (usable in FROM lines), then the stages.
type dockerfile struct {
	metaArgs []instruction
	stages   []stageDef
	escape   rune
	steps    int // instructions in all, for "Step N/M"
}

// supported lists the instructions berth's builder runs, with the flags
// each accepts.
var supported = map[string][]string{
	"FROM": nil, "ARG": nil, "ENV": nil, "LABEL": nil, "WORKDIR": nil, "USER": nil,
	"CMD": nil, "ENTRYPOINT": nil, "EXPOSE": nil, "VOLUME": nil, "STOPSIGNAL": nil,
	"SHELL": nil, "RUN": nil, "COPY": {"chown", "from"}, "ADD": {"chown"},
	"HEALTHCHECK": {"interval", "timeout", "start-period", "start-interval", "retries"},
}

// A Dockerfile is hostile input when it comes with someone else's
// repository: bounded as BuildKit and buildx bound it, it is refused in
// one line before any step runs, not after hours of steps.
const (
	// maxDockerfile is what buildx accepts of a Dockerfile it fetches
	// (2 MB; BuildKit's parser also refuses a line over 64 KiB).
	maxDockerfile = 2 << 20
	// maxInstructions bounds the steps: BuildKit has no count of its own,
	// but its whole build must fit in one 16 MiB gRPC message, which a
	// few thousand instructions reach; a classic builder runs one image
	// commit per step. Real Dockerfiles have tens.
	maxInstructions = 10000
)

// readDockerfile reads the Dockerfile at p, a regular file of at most
// maxDockerfile bytes, and parses it.
func readDockerfile(p string) (*dockerfile, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("read the Dockerfile: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("the Dockerfile %s is not a regular file: refused", p)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxDockerfile+1))
	if err != nil {
		return nil, fmt.Errorf("read the Dockerfile: %w", err)
	}
	if len(b) > maxDockerfile {
		return nil, fmt.Errorf("the Dockerfile %s is over %s: refused (buildx's bound too)", p, store.FormatSize(maxDockerfile))
	}
	return parseDockerfile(bytes.NewReader(b))
}

// parseDockerfile parses and checks a whole Dockerfile before any step
// runs: an instruction berth does not know fails the build at once, with
// its line, not after minutes of RUN steps; so do more than
// maxInstructions.
func parseDockerfile(r io.Reader) (*dockerfile, error) {
	res, err := parser.Parse(r)
	if err != nil {
		return nil, fmt.Errorf("parse the Dockerfile: %w", err)
	}
	if n := len(res.AST.Children); n > maxInstructions {
		return nil, fmt.Errorf("the Dockerfile has %d instructions, more than %d: refused", n, maxInstructions)
	}
	df := &dockerfile{escape: res.EscapeToken}
	for _, n := range res.AST.Children {
		in := newInstruction(n, fmt.Sprintf("Dockerfile line %d", n.StartLine))
		if err := checkInstruction(in); err != nil {
			return nil, err
		}
		df.steps++
		switch {
		case in.cmd == "FROM":
			st, err := fromStage(in)
			if err != nil {
				return nil, err
			}
			for _, s := range df.stages {
				if st.name != "" && s.name == st.name {
					return nil, in.errorf("%s: a stage of that name is defined above (line %d)", st.name, s.from.line)
				}
			}
			df.stages = append(df.stages, st)
		case len(df.stages) == 0 && in.cmd == "ARG":
			df.metaArgs = append(df.metaArgs, in)
		case len(df.stages) == 0:
			return nil, in.errorf("before FROM: a Dockerfile starts with FROM (only ARG may come before it)")
		default:
			last := &df.stages[len(df.stages)-1]
			last.instrs = append(last.instrs, in)
		}
	}
	if len(df.stages) == 0 {
		return nil, errors.New("the Dockerfile has no FROM instruction")
	}
	return df, nil
}

func checkInstruction(in instruction) error {
	allowed, ok := supported[in.cmd]
	if !ok {
		switch in.cmd {
		case "ONBUILD", "MAINTAINER":
			return fmt.Errorf("%s: %s is not supported by berth's builder (remove the line)", in.where, in.cmd)
		}
		return fmt.Errorf("%s: unknown instruction %s", in.where, in.cmd)
	}
	if in.heredoc {
		return in.errorf("with a heredoc (<<EOF) is not supported by berth's builder: use a file of the context, or echo")
	}
	if _, err := parseFlags(in, allowed...); err != nil {
		return err
	}
	if len(in.args) == 0 && !(in.json && (in.cmd == "CMD" || in.cmd == "ENTRYPOINT")) {
		return in.errorf("needs an argument")
	}
	if in.cmd == "SHELL" && !in.json {
		return in.errorf(`needs the JSON form: SHELL ["/bin/sh", "-c"]`)
	}
	return nil
}

// fromStage reads FROM IMAGE [AS NAME].
func fromStage(in instruction) (stageDef, error) {
	st := stageDef{from: in}
	switch {
	case len(in.args) == 1:
	case len(in.args) == 3 && strings.EqualFold(in.args[1], "AS"):
		st.name = strings.ToLower(in.args[2])
		if st.name == "scratch" || isDigits(st.name) {
			return st, in.errorf("AS %s: a stage name may not be %q or a number", in.args[2], st.name)
		}
	default:
		return st, in.errorf("takes IMAGE [AS NAME], not %q", strings.Join(in.args, " "))
	}
	return st, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parseFlags reads an instruction's --name=value flags, refusing the ones
// berth does not know.
func parseFlags(in instruction, allowed ...string) (map[string]string, error) {
	out := map[string]string{}
	for _, f := range in.flags {
		name, value, _ := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		ok := false
		for _, a := range allowed {
			ok = ok || a == name
		}
		if !ok {
			if len(allowed) == 0 {
				return nil, in.errorf("--%s: %s takes no flags in berth's builder", name, in.cmd)
			}
			return nil, in.errorf("--%s is not supported by berth's builder (it knows --%s)", name, strings.Join(allowed, ", --"))
		}
		out[name] = value
	}
	return out, nil
}

// envList is a list of NAME=value, the last one winning: the variables
// ${NAME} expands to, as shell.Lex asks for them.
type envList []string

func (e envList) Get(key string) (string, bool) {
	for i := len(e) - 1; i >= 0; i-- {
		if k, v, _ := strings.Cut(e[i], "="); k == key {
			return v, true
		}
	}
	return "", false
}

func (e envList) Keys() []string {
	var keys []string
	seen := map[string]bool{}
	for _, kv := range e {
		k, _, _ := strings.Cut(kv, "=")
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// setEnv sets NAME=value in a list such as a config's Env, in place.
func setEnv(env []string, key, value string) []string {
	for i, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			out := append([]string{}, env...)
			out[i] = key + "=" + value
			return out
		}
	}
	return append(append([]string{}, env...), key+"="+value)
}

// expander expands $VAR and ${VAR:-default} in words as docker build does
// (BuildKit's shell.Lex: quotes removed, escapes honoured, no command
// substitution), with the variables of one moment of the build.
type expander struct {
	lex *shell.Lex
	env envList
}

func newExpander(escape rune, env envList) expander {
	return expander{lex: shell.NewLex(escape), env: env}
}

// maxExpansion bounds what the variables of one word add to it: ENV
// A=$A$A doubles A, and forty such lines would ask for a terabyte.
const maxExpansion = 1 << 20

// patternReplace is ${NAME/pattern/replacement}, which BuildKit's Lex
// knows: it multiplies a value (${A//?/xxxx} makes each byte four), so
// that no bound on the variables bounds the word. berth refuses it.
var patternReplace = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*/`)

func (x expander) word(in instruction, w string) (string, error) {
	if patternReplace.MatchString(w) {
		return "", in.errorf("%s: ${NAME/pattern/replacement} is not supported by berth's builder", w)
	}
	used := 0
	out, _, err := x.lex.ProcessWord(w, boundedEnv{x.env, &used})
	if err != nil {
		return "", in.errorf("%v", err)
	}
	if used > maxExpansion {
		return "", in.errorf("%q: its variables expand to more than %s: refused", tree.Trunc(w, 40), store.FormatSize(maxExpansion))
	}
	return out, nil
}

// boundedEnv counts what a word's variables hold; past maxExpansion it
// gives empty values, so that the expansion stops growing, and word
// refuses it.
type boundedEnv struct {
	env  envList
	used *int
}

func (b boundedEnv) Get(key string) (string, bool) {
	v, ok := b.env.Get(key)
	if *b.used += len(v); *b.used > maxExpansion {
		return "", ok
	}
	return v, ok
}

func (b boundedEnv) Keys() []string { return b.env.Keys() }

func (x expander) words(in instruction, ws []string) ([]string, error) {
	out := make([]string, 0, len(ws))
	for _, w := range ws {
		e, err := x.word(in, w)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// keyValues reads ENV and LABEL: the parser gives key, value, separator
// triples; both sides are expanded with the variables as they were
// before the instruction (ENV A=1 B=$A gives B the old A, as in docker).
func (x expander) keyValues(in instruction) ([][2]string, error) {
	if len(in.args)%3 != 0 {
		return nil, in.errorf("needs NAME=value pairs")
	}
	var out [][2]string
	for i := 0; i < len(in.args); i += 3 {
		k, err := x.word(in, in.args[i])
		if err != nil {
			return nil, err
		}
		v, err := x.word(in, in.args[i+1])
		if err != nil {
			return nil, err
		}
		if k == "" {
			return nil, in.errorf("has an empty name")
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}
