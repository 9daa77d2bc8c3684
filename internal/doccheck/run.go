//go:build linux

package doccheck

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A Runner runs blocks: all commands of a block in order in one bash, as a
// learner would type them into one terminal.
type Runner struct {
	Dir     string        // working directory (the repository root)
	Wrap    []string      // runs bash under this, e.g. {"unshare", "--net", "--"}
	LoUp    bool          // bring lo up first (in a fresh network namespace)
	Env     []string      // extra environment, after the process's own
	Timeout time.Duration // for the whole block; 0 means 5 minutes
	// Linger is how long processes the block started in the background may
	// take to end after the shell exits before they count as left behind;
	// 0 means 2 seconds.
	Linger time.Duration
}

// ChapterRunner runs blocks as make test does for the chapters: in dir
// (the repository root), as root, each block in a fresh network namespace
// whose only link is lo, up; so no block can reach or change the host's
// network.
func ChapterRunner(dir string) *Runner {
	return &Runner{Dir: dir, Wrap: []string{"unshare", "--net", "--"}, LoUp: true}
}

// A Result is what one command printed.
type Result struct {
	Output string
	Ran    bool // false when the shell ended before reaching the command
}

// A Report is the run of one block.
type Report struct {
	Results  []Result // one per command
	Setup    string   // what the block's preparation printed (normally nothing)
	Leftover string   // processes the block left running (they were killed)
	Err      error    // the shell could not start, or was killed on timeout
}

// prelude is what every block's shell runs first. Every block runs as
// root, so `sudo CMD` runs CMD as sudo would (an executable; VAR=value
// before it is allowed). sudo with options (sudo -u USER ...) is the real
// one, or runuser when sudo is not installed.
const prelude = `sudo() {
	case "${1-}" in
	-u)
		if type -P sudo >/dev/null; then command sudo "$@"; return; fi
		local user=${2-}; shift 2; runuser -u "$user" -- "$@";;
	-*)
		if type -P sudo >/dev/null; then command sudo "$@"; return; fi
		echo "sudo $1: sudo is not installed (only sudo -u works without it)" >&2; return 1;;
	*) env -- "$@";;
	esac
}
export -f sudo
`

// Run runs the block and collects each command's output. It never
// compares: see Check.
func (r *Runner) Run(b Block) Report {
	token := "@@doccheck-" + randomHex() + "@@"
	var s strings.Builder
	s.WriteString(prelude)
	if r.LoUp {
		s.WriteString("ip link set lo up || echo 'doccheck: cannot bring lo up'\n")
	}
	// The marker keeps $? so that `echo $?` shows the previous command's
	// status; its leading newline ends an unterminated last line.
	fmt.Fprintf(&s, "__doccheck_mark() { local rc=$?; printf '\\n%s %%s\\n' \"$1\"; return $rc; }\n", token)
	s.WriteString("__doccheck_mark 0\n")
	for i, c := range b.Commands {
		fmt.Fprintf(&s, "%s\n__doccheck_mark %d\n", c.Text, i+1)
	}

	timeout := r.Timeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	linger := r.Linger
	if linger == 0 {
		linger = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := append(append([]string{}, r.Wrap...), "bash", "--noprofile", "--norc", "-c", s.String(), "bash")
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = r.Dir
	// SHELL=/bin/sh: what a program that starts "$SHELL -c" (script, for
	// one) gets on a machine whose root has no login shell set, as in CI;
	// there the block's sudo function is not seen, so a chapter must not
	// rely on it inside such a command.
	cmd.Env = append(cleanEnv(os.Environ()), "LC_ALL=C.UTF-8", "TERM=dumb", "SHELL=/bin/sh")
	cmd.Env = append(cmd.Env, r.Env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out // one pipe: the order is kept
	// Its own process group, so that a timeout or a leftover kills every
	// process the block started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = linger

	var rep Report
	err := cmd.Run()
	if cmd.Process == nil {
		rep.Err = fmt.Errorf("start %s: %w", args[0], err)
		return rep
	}
	if ctx.Err() != nil {
		rep.Err = fmt.Errorf("block still running after %v: killed", timeout)
	}
	rep.Leftover = reapGroup(cmd.Process.Pid, linger)

	text := out.String()
	mark := func(k int) string { return "\n" + token + " " + strconv.Itoa(k) + "\n" }
	start := strings.Index(text, mark(0))
	if start < 0 {
		rep.Setup = text
		if rep.Err == nil {
			rep.Err = fmt.Errorf("the block's shell ended before its first command: %v", err)
		}
		rep.Results = make([]Result, len(b.Commands))
		return rep
	}
	rep.Setup = text[:start]
	text = text[start+len(mark(0)):]
	for k := 1; k <= len(b.Commands); k++ {
		end := strings.Index(text, mark(k))
		if end < 0 {
			// The shell ended (exit, a syntax error) or was killed here:
			// what it printed belongs to this command.
			rep.Results = append(rep.Results, Result{Output: text, Ran: true})
			for len(rep.Results) < len(b.Commands) {
				rep.Results = append(rep.Results, Result{})
			}
			if rep.Err == nil && k < len(b.Commands) {
				rep.Err = fmt.Errorf("the shell ended during the command at line %d", b.Commands[k-1].Line)
			}
			return rep
		}
		rep.Results = append(rep.Results, Result{Output: text[:end], Ran: true})
		text = text[end+len(mark(k)):]
	}
	if strings.TrimSpace(text) != "" {
		// Background processes printing after the last command.
		rep.Results[len(rep.Results)-1].Output += text
	}
	return rep
}

// Check runs the block and returns one message per problem, each naming
// the chapter's file and line; none means the chapter tells the truth.
func (r *Runner) Check(b Block) []string {
	rep := r.Run(b)
	var fails []string
	if rep.Err != nil {
		fails = append(fails, fmt.Sprintf("%s:%d: %v", b.File, b.Line, rep.Err))
	}
	if s := strings.TrimSpace(rep.Setup); s != "" {
		fails = append(fails, fmt.Sprintf("%s:%d: preparing the block printed:\n%s", b.File, b.Line, s))
	}
	for i, c := range b.Commands {
		res := rep.Results[i]
		if !res.Ran {
			fails = append(fails, fmt.Sprintf("%s:%d: $ %s\nnot run: the shell had ended", b.File, c.Line, c.FirstLine()))
			continue
		}
		if ok, diff := Match(c.Want, SplitOutput(res.Output)); !ok {
			fails = append(fails, fmt.Sprintf("%s:%d: $ %s\noutput differs from the chapter (- chapter, + actual):\n%s",
				b.File, c.Line, c.FirstLine(), diff))
		}
	}
	if rep.Leftover != "" {
		fails = append(fails, fmt.Sprintf("%s:%d: the block left processes running (killed now); a block must leave nothing behind:\n%s",
			b.File, b.Line, rep.Leftover))
	}
	return fails
}

// reapGroup waits a moment for the processes of group pgid to end, then
// kills and describes those that did not.
func reapGroup(pgid int, linger time.Duration) string {
	deadline := time.Now().Add(linger)
	for {
		if syscall.Kill(-pgid, 0) != nil {
			return "" // ESRCH: nobody left
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	left := groupMembers(pgid)
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	if len(left) == 0 {
		return "(processes of the block's group, gone meanwhile)"
	}
	return strings.Join(left, "\n")
}

// groupMembers lists "PID COMMAND LINE" for every process in group pgid.
func groupMembers(pgid int) []string {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []string
	for _, d := range dirs {
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces and parens.
		rest := stat[bytes.LastIndexByte(stat, ')')+1:]
		f := strings.Fields(string(rest))
		if len(f) < 3 || f[2] != strconv.Itoa(pgid) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(d, "cmdline"))
		line := strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
		if first, _, more := strings.Cut(line, "\n"); more || len(first) > 100 {
			// The block's own (sub)shells carry the whole script.
			line = first[:min(len(first), 100)] + " …"
		}
		out = append(out, filepath.Base(d)+" "+line)
	}
	return out
}

// cleanEnv drops what would make the block's bash run more than the block.
func cleanEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "BASH_ENV", k == "ENV", k == "CDPATH", k == "PROMPT_COMMAND", k == "SHELLOPTS", k == "BASHOPTS":
		case strings.HasPrefix(k, "BASH_FUNC_"):
		default:
			out = append(out, kv)
		}
	}
	return out
}

func randomHex() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(errors.New("doccheck: crypto/rand: " + err.Error()))
	}
	return hex.EncodeToString(b)
}
