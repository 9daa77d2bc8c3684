//go:build linux

package clikit

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// PrintInspect prints what inspect found: a JSON array, or with --format
// the template run on each, as the docker CLI runs it on the JSON, not the
// Go types: {{.Id}}, {{.State.Status}} are the JSON's names. Then, as
// docker, what was not found, and exit 1.
func (a *App) PrintInspect(out []any, format string, failed []string) error {
	if format != "" {
		var values []any
		for _, r := range out {
			b, err := json.Marshal(r)
			if err != nil {
				return err
			}
			var v map[string]any
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.UseNumber() // 16777216, not 1.6777216e+07
			if err := dec.Decode(&v); err != nil {
				return err
			}
			values = append(values, v)
		}
		if err := Render(a.Stdout, format, nil, values); err != nil {
			return Usage("%v", err)
		}
	} else {
		b, err := json.MarshalIndent(out, "", "    ")
		if err != nil {
			return err
		}
		if out == nil {
			b = []byte("[]")
		}
		fmt.Fprintln(a.Stdout, string(b))
	}
	for _, f := range failed {
		fmt.Fprintf(a.Stderr, "berth: %s\n", f)
	}
	if len(failed) > 0 {
		return Silent(1)
	}
	return nil
}
