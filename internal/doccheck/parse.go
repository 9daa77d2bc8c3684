// Package doccheck keeps the chapters honest: it finds the runnable shell
// blocks of a Markdown file, runs them, and compares what they print with
// what the chapter shows.
//
// A runnable block is a fenced code block whose info string is
// `console run`. Inside it, a line starting with "$ " is a command (a
// trailing backslash continues it on the next line, as in bash); the lines
// after it, up to the next command, are its expected output, stdout and
// stderr merged. In expected output, "…" (U+2026) inside a line matches any
// text, and a line that is only "…" matches any number of lines, none
// included. docs/contributing.md describes the convention for chapter authors.
package doccheck

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// A Block is one runnable block of a chapter.
type Block struct {
	File     string // as given to Parse, for messages
	Line     int    // line of the opening fence
	Commands []Command
}

// A Command is one "$ " line (with its continuation lines) and the output
// the chapter shows for it.
type Command struct {
	Line int    // line of the "$ "
	Text string // shell source; continuation lines kept, joined by newlines
	Want []Line // expected output lines
}

// A Line is a line of expected output and where the chapter has it.
type Line struct {
	N    int
	Text string
}

// Ellipsis is the wildcard of expected output.
const Ellipsis = "…"

var fenceRE = regexp.MustCompile("^( {0,3})(`{3,}|~{3,})(.*)$")

// Parse returns the runnable blocks of a Markdown document, in order. It
// follows CommonMark's fence rules, so a `console run` block shown inside a
// longer fence (as docs/contributing.md does) is text, not a block.
func Parse(file string, src []byte) ([]Block, error) {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		lines = append(lines, strings.TrimSuffix(sc.Text(), "\r"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}

	var blocks []Block
	for i := 0; i < len(lines); i++ {
		m := fenceRE.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		indent, fence, info := len(m[1]), m[2], strings.TrimSpace(m[3])
		if fence[0] == '`' && strings.Contains(info, "`") {
			continue // not a fence: a code span at the start of a line
		}
		start := i
		var body []string
		closed := false
		for i++; i < len(lines); i++ {
			if isClosing(lines[i], fence) {
				closed = true
				break
			}
			body = append(body, dedent(lines[i], indent))
		}
		if !isRunInfo(info) {
			continue
		}
		if !closed {
			return nil, fmt.Errorf("%s:%d: runnable block is never closed (add a %s line)", file, start+1, fence)
		}
		b, err := parseBlock(file, start+1, body)
		if err != nil {
			return nil, err
		}
		blocks = append(blocks, b)
	}
	return blocks, nil
}

// isRunInfo: the info string is exactly the words "console run".
func isRunInfo(info string) bool {
	f := strings.Fields(info)
	return len(f) == 2 && f[0] == "console" && f[1] == "run"
}

func isClosing(line, fence string) bool {
	t := strings.TrimLeft(line, " ")
	if len(line)-len(t) > 3 {
		return false
	}
	t = strings.TrimRight(t, " \t")
	return len(t) >= len(fence) && strings.Trim(t, fence[:1]) == ""
}

// dedent removes up to n leading spaces, as CommonMark does for the
// content of an indented fence.
func dedent(s string, n int) string {
	for i := 0; i < n && strings.HasPrefix(s, " "); i++ {
		s = s[1:]
	}
	return s
}

func parseBlock(file string, fenceLine int, body []string) (Block, error) {
	b := Block{File: file, Line: fenceLine}
	for k := 0; k < len(body); k++ {
		n := fenceLine + 1 + k
		line := body[k]
		if cmd, ok := strings.CutPrefix(line, "$ "); ok || line == "$" {
			c := Command{Line: n, Text: cmd}
			// A trailing backslash continues the command, as in bash.
			for strings.HasSuffix(line, `\`) && k+1 < len(body) {
				k++
				line = body[k]
				c.Text += "\n" + line
			}
			if strings.TrimSpace(c.Text) == "" {
				return b, fmt.Errorf("%s:%d: empty command", file, n)
			}
			b.Commands = append(b.Commands, c)
			continue
		}
		if len(b.Commands) == 0 {
			if strings.TrimSpace(line) == "" {
				continue
			}
			return b, fmt.Errorf("%s:%d: runnable block has output before its first command (commands start with \"$ \")", file, n)
		}
		c := &b.Commands[len(b.Commands)-1]
		c.Want = append(c.Want, Line{N: n, Text: line})
	}
	if len(b.Commands) == 0 {
		return b, fmt.Errorf("%s:%d: runnable block has no command (commands start with \"$ \")", file, fenceLine)
	}
	for i := range b.Commands {
		c := &b.Commands[i]
		for len(c.Want) > 0 && strings.TrimSpace(c.Want[len(c.Want)-1].Text) == "" {
			c.Want = c.Want[:len(c.Want)-1]
		}
	}
	return b, nil
}

// FirstLine is the command's first line, for messages.
func (c Command) FirstLine() string {
	first, _, more := strings.Cut(c.Text, "\n")
	if more {
		return first + " …"
	}
	return first
}
