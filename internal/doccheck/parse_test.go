package doccheck

import (
	"strings"
	"testing"
)

const chapter = "# A chapter\n" + // 1
	"\n" + // 2
	"```console\n" + // 3: an illustration, not run
	"$ sudo reboot\n" + // 4
	"```\n" + // 5
	"\n" + // 6
	"```console run\n" + // 7
	"$ echo one\n" + // 8
	"one\n" + // 9
	"$ printf '%s\\n' a \\\n" + // 10
	"    b\n" + // 11
	"a\n" + // 12
	"b\n" + // 13
	"\n" + // 14: trailing blank lines do not count
	"$ true\n" + // 15
	"```\n" + // 16
	"\n" + // 17
	"````markdown\n" + // 18: a longer fence showing a block is text
	"```console run\n" + // 19
	"$ echo not run\n" + // 20
	"```\n" + // 21
	"````\n" + // 22
	"\n" + // 23
	"1. In a list:\n" + // 24
	"\n" + // 25
	"   ~~~ console   run\n" + // 26
	"   $ echo indented\n" + // 27
	"   indented\n" + // 28
	"   ~~~\n" // 29

func TestParse(t *testing.T) {
	blocks, err := Parse("ch.md", []byte(chapter))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 2 {
		t.Fatalf("got %d blocks, want 2: %+v", len(blocks), blocks)
	}
	b := blocks[0]
	if b.File != "ch.md" || b.Line != 7 || len(b.Commands) != 3 {
		t.Fatalf("first block: %+v", b)
	}
	wantCmds := []struct {
		line int
		text string
		want []Line
	}{
		{8, "echo one", []Line{{9, "one"}}},
		{10, "printf '%s\\n' a \\\n    b", []Line{{12, "a"}, {13, "b"}}},
		{15, "true", nil},
	}
	for i, w := range wantCmds {
		c := b.Commands[i]
		if c.Line != w.line || c.Text != w.text || !equalLines(c.Want, w.want) {
			t.Errorf("command %d: got %+v, want %+v", i, c, w)
		}
	}
	if got := b.Commands[1].FirstLine(); got != `printf '%s\n' a \ …` {
		t.Errorf("FirstLine = %q", got)
	}
	b = blocks[1]
	if b.Line != 26 || len(b.Commands) != 1 || b.Commands[0].Text != "echo indented" ||
		!equalLines(b.Commands[0].Want, []Line{{28, "indented"}}) {
		t.Errorf("indented block: %+v", b)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"output first", "```console run\nhello\n$ echo hello\n```\n", "ch.md:2: runnable block has output before its first command"},
		{"no command", "\n```console run\n```\n", "ch.md:2: runnable block has no command"},
		{"unclosed", "```console run\n$ true\n", "ch.md:1: runnable block is never closed"},
		{"empty command", "```console run\n$ \n```\n", "ch.md:2: empty command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("ch.md", []byte(tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func equalLines(a, b []Line) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
