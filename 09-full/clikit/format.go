//go:build linux

package clikit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
	"unicode/utf8"
)

// Go templates as the docker CLI takes them (--format): its functions,
// and the "table" prefix, which prints a header and aligns the columns.
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return "", err
		}
		return strings.TrimSpace(b.String()), nil
	},
	"split":    strings.Split,
	"join":     strings.Join,
	"title":    func(s string) string { return strings.ToUpper(s[:min(1, len(s))]) + s[min(1, len(s)):] },
	"lower":    strings.ToLower,
	"upper":    strings.ToUpper,
	"truncate": func(s string, n int) string { return Ellipsis(s, n) },
	"println":  func(args ...any) string { return fmt.Sprintln(args...) },
}

// ParseFormat parses a --format template; table says whether it asked for
// a table (a header row and aligned columns).
func ParseFormat(format string) (tmpl *template.Template, table bool, err error) {
	if rest, ok := strings.CutPrefix(format, "table"); ok {
		table, format = true, strings.TrimLeft(rest, " ")
	}
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	tmpl, err = template.New("format").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return nil, false, fmt.Errorf("template parsing error: %v", err)
	}
	return tmpl, table, nil
}

// Render writes one line per value (and, for a table, the header first,
// from header, whose methods answer with the columns' names).
func Render(w io.Writer, format string, header any, values []any) error {
	tmpl, table, err := ParseFormat(format)
	if err != nil {
		return err
	}
	out := w
	var tw *tabwriter.Writer
	if table {
		tw = tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
		out = tw
		if err := ExecLine(out, tmpl, header); err != nil {
			return err
		}
	}
	for _, v := range values {
		if err := ExecLine(out, tmpl, v); err != nil {
			return err
		}
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

func ExecLine(w io.Writer, tmpl *template.Template, v any) error {
	var b bytes.Buffer
	if err := tmpl.Execute(&b, v); err != nil {
		return fmt.Errorf("template: %v", err)
	}
	s := strings.TrimSuffix(b.String(), "\n")
	_, err := fmt.Fprintln(w, s)
	return err
}

// Ellipsis shortens s to n runes, the last one "…", as the docker CLI.
func Ellipsis(s string, n int) string {
	if utf8.RuneCountInString(s) <= n || n < 1 {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
