package doccheck

import (
	"fmt"
	"regexp"
	"strings"
)

// A pattern is one expected line: literal text with "…" wildcards, or a
// line that is only "…" and stands for any number of lines.
type pattern struct {
	line Line
	any  bool           // the line is only "…"
	re   *regexp.Regexp // nil when the line has no wildcard
	text string
}

func compile(want []Line) []pattern {
	ps := make([]pattern, len(want))
	for i, w := range want {
		t := trimRight(w.Text)
		p := pattern{line: w, text: t}
		switch {
		case strings.TrimSpace(t) == Ellipsis:
			p.any = true
		case strings.Contains(t, Ellipsis):
			parts := strings.Split(t, Ellipsis)
			if len(parts) > 1 && parts[len(parts)-1] == "" {
				// "host: …" also matches "host:", whose trailing space
				// was trimmed like every line's.
				parts[len(parts)-2] = trimRight(parts[len(parts)-2])
			}
			for k := range parts {
				parts[k] = regexp.QuoteMeta(parts[k])
			}
			p.re = regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
		}
		ps[i] = p
	}
	return ps
}

func (p pattern) matches(s string) bool {
	if p.re != nil {
		return p.re.MatchString(s)
	}
	return p.text == s
}

func trimRight(s string) string { return strings.TrimRight(s, " \t\r") }

// SplitOutput turns what a command printed into lines: trailing spaces
// and trailing empty lines do not count (a chapter cannot show them).
func SplitOutput(out string) []string {
	out = strings.TrimRight(out, "\n")
	if out == "" {
		return nil
	}
	lines := strings.Split(out, "\n")
	for i := range lines {
		lines[i] = trimRight(lines[i])
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// Match compares output lines with the expected ones. When they differ it
// returns a diff: "-" lines the chapter shows but the command did not
// print, "+" lines it printed that the chapter does not show, the rest
// context; each expected line carries its line number in the chapter.
func Match(want []Line, got []string) (ok bool, diff string) {
	ps := compile(want)
	n, m := len(ps), len(got)
	// cost[i][j]: fewest unmatched lines to align ps[i:] with got[j:]. An
	// edit-distance table where "…" eats any number of lines for free.
	cost := make([][]int, n+1)
	for i := range cost {
		cost[i] = make([]int, m+1)
	}
	for i := n; i >= 0; i-- {
		for j := m; j >= 0; j-- {
			switch {
			case i == n && j == m:
				cost[i][j] = 0
			case i == n:
				cost[i][j] = 1 + cost[i][j+1]
			case ps[i].any:
				c := cost[i+1][j]
				if j < m && cost[i][j+1] < c {
					c = cost[i][j+1]
				}
				cost[i][j] = c
			default:
				c := 1 + cost[i+1][j]
				if j < m {
					if ps[i].matches(got[j]) && cost[i+1][j+1] < c {
						c = cost[i+1][j+1]
					}
					if 1+cost[i][j+1] < c {
						c = 1 + cost[i][j+1]
					}
				}
				cost[i][j] = c
			}
		}
	}
	if cost[0][0] == 0 {
		return true, ""
	}

	var b strings.Builder
	width := 1
	if n > 0 {
		width = len(fmt.Sprint(ps[n-1].line.N))
	}
	row := func(mark string, num int, text string) {
		ns := strings.Repeat(" ", width)
		if num > 0 {
			ns = fmt.Sprintf("%*d", width, num)
		}
		fmt.Fprintf(&b, "%s %s | %s\n", mark, ns, text)
	}
	i, j, shown := 0, 0, -1
	for i < n || j < m {
		switch {
		case i < n && ps[i].any:
			if shown != i {
				row(" ", ps[i].line.N, ps[i].text)
				shown = i
			}
			if j < m && cost[i][j] == cost[i][j+1] {
				row(" ", 0, got[j])
				j++
			} else {
				i++
			}
		case i < n && j < m && ps[i].matches(got[j]) && cost[i][j] == cost[i+1][j+1]:
			row(" ", ps[i].line.N, got[j])
			i, j = i+1, j+1
		case i < n && cost[i][j] == 1+cost[i+1][j]:
			row("-", ps[i].line.N, ps[i].text)
			i++
		default:
			row("+", 0, got[j])
			j++
		}
	}
	return false, b.String()
}
