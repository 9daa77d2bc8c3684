package doccheck

import (
	"strings"
	"testing"
)

func lines(texts ...string) []Line {
	out := make([]Line, len(texts))
	for i, t := range texts {
		out[i] = Line{N: 10 + i, Text: t}
	}
	return out
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		want []Line
		got  string
		ok   bool
	}{
		{"exact", lines("a", "b"), "a\nb\n", true},
		{"no output expected", nil, "", true},
		{"unexpected output", nil, "surprise\n", false},
		{"missing output", lines("a"), "", false},
		{"last line without newline", lines("a", "b"), "a\nb", true},
		{"trailing spaces and blank lines", lines("a  "), "a\t\n\n\n", true},
		{"wildcard in a line", lines("pid …, uts:[…]"), "pid 42, uts:[4026532177]\n", true},
		{"wildcard matches empty text", lines("x…y"), "xy\n", true},
		{"wildcard line alone", lines("host: …"), "host: \n", true},
		{"wildcard does not span lines", lines("a…b"), "a\nb\n", false},
		{"literal regexp characters", lines("(1+1)*[x]"), "(1+1)*[x]\n", true},
		{"literal regexp characters differ", lines("a.c"), "abc\n", false},
		{"ellipsis line matches none", lines("a", "…", "b"), "a\nb\n", true},
		{"ellipsis line matches many", lines("a", "…", "b"), "a\n1\n2\n3\nb\n", true},
		{"ellipsis first", lines("…", "end"), "x\ny\nend\n", true},
		{"ellipsis last", lines("start", "…"), "start\nx\ny\n", true},
		{"ellipsis alone matches nothing", lines("…"), "", true},
		{"two ellipses", lines("…", "mid", "…"), "a\nmid\nb\n", true},
		{"ellipsis needs the lines after it", lines("a", "…", "b"), "a\n1\n2\n", false},
		{"extra line", lines("a", "b"), "a\nx\nb\n", false},
		{"changed line", lines("a", "b"), "a\nc\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, diff := Match(tc.want, SplitOutput(tc.got))
			if ok != tc.ok {
				t.Errorf("Match = %v, want %v; diff:\n%s", ok, tc.ok, diff)
			}
			if ok != (diff == "") {
				t.Errorf("ok=%v but diff %q", ok, diff)
			}
		})
	}
}

// A mismatch is reported as a diff with the chapter's line numbers. The
// diff is the smallest one: here "…" takes "other" too, so only "demo" is
// missing.
func TestMatchDiff(t *testing.T) {
	want := lines("hostname:", "demo", "…", "done")
	ok, diff := Match(want, SplitOutput("hostname:\nother\nnoise 1\nnoise 2\ndone\n"))
	if ok {
		t.Fatal("a changed line matched")
	}
	wantDiff := "" +
		"  10 | hostname:\n" +
		"- 11 | demo\n" +
		"  12 | …\n" +
		"     | other\n" +
		"     | noise 1\n" +
		"     | noise 2\n" +
		"  13 | done\n"
	if diff != wantDiff {
		t.Errorf("diff:\n%s\nwant:\n%s", diff, wantDiff)
	}
}

func TestSplitOutput(t *testing.T) {
	got := SplitOutput("a \n\nb\n\n")
	if strings.Join(got, "|") != "a||b" {
		t.Errorf("SplitOutput = %q", got)
	}
	if SplitOutput("\n\n") != nil {
		t.Error("blank output should have no lines")
	}
}
