//go:build linux

package inside

import (
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"berth/09-full/engine"
	"berth/09-full/events"

	"berth/09-full/clikit"
)

// eventsCommand is `berth events [--since] [--until] [--filter]
// [--format]`: the journal the commands and the monitors' exit commands
// append to (package events), as docker events prints it; without
// --until it follows until Ctrl-C.
func (a *app) eventsCommand() *cobra.Command {
	var since, until, format string
	var filters []string
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			now := time.Now()
			from, err := eventTime(since, now)
			if err != nil {
				return clikit.Usage("--since: %v", err)
			}
			to, err := eventTime(until, now)
			if err != nil {
				return clikit.Usage("--until: %v", err)
			}
			match, err := eventFilters(filters)
			if err != nil {
				return clikit.Usage("%v", err)
			}
			if format != "" {
				if _, _, err := clikit.ParseFormat(format); err != nil {
					return clikit.Usage("%v", err)
				}
			}
			e, err := a.Engine()
			if err != nil {
				return err
			}
			stop := make(chan struct{})
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, unix.SIGINT, unix.SIGTERM)
			defer signal.Stop(sigs)
			go func() { <-sigs; close(stop) }()
			return events.Read(e.StateRoot, from, to, until == "", stop, func(ev events.Event) error {
				if !match(e, ev) {
					return nil
				}
				if format != "" {
					return clikit.Render(a.Stdout, format, nil, []any{ev})
				}
				fmt.Fprintln(a.Stdout, eventLine(ev))
				return nil
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&since, "since", "", "show all events created since timestamp (RFC 3339, Unix seconds, or a duration such as 10m)")
	fs.StringVar(&until, "until", "", "stream events until this timestamp")
	fs.StringArrayVarP(&filters, "filter", "f", nil, "filter output based on conditions provided: container=, event=, type=, image=")
	fs.StringVar(&format, "format", "", "format output using a Go template")
	return cmd
}

// eventLine is docker events' line: time, type, action, id, attributes.
func eventLine(ev events.Event) string {
	keys := make([]string, 0, len(ev.Actor.Attributes))
	for k := range ev.Actor.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]string, len(keys))
	for i, k := range keys {
		attrs[i] = k + "=" + ev.Actor.Attributes[k]
	}
	return fmt.Sprintf("%s %s %s %s (%s)", time.Unix(0, ev.TimeNano).Local().Format("2006-01-02T15:04:05.000000000Z07:00"),
		ev.Type, ev.Action, ev.Actor.ID, strings.Join(attrs, ", "))
}

// eventTime reads --since and --until: RFC 3339, Unix seconds (with a
// fraction), or a duration back from now; "" is none.
func eventTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Unix(0, int64(f*1e9)), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want a time (2006-01-02T15:04:05Z), Unix seconds, or a duration (10m)", s)
}

// eventFilters reads --filter KEY=VALUE: each key may repeat (any of its
// values), all keys must match.
func eventFilters(list []string) (func(*engine.Engine, events.Event) bool, error) {
	want := map[string][]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("bad format of filter (expected name=value): %s", kv)
		}
		switch k {
		case "container", "event", "type", "image":
		default:
			return nil, fmt.Errorf("invalid filter '%s' (berth knows container, event, type, image)", k)
		}
		want[k] = append(want[k], v)
	}
	return func(e *engine.Engine, ev events.Event) bool {
		for k, vs := range want {
			ok := false
			for _, v := range vs {
				switch k {
				case "container":
					ok = ok || v == ev.Actor.Attributes["name"] || (len(v) >= 3 && strings.HasPrefix(ev.Actor.ID, v))
				case "event":
					action, _, _ := strings.Cut(ev.Action, ":")
					ok = ok || v == action
				case "type":
					ok = ok || v == ev.Type
				case "image":
					ok = ok || v == ev.Actor.Attributes["image"]
				}
			}
			if !ok {
				return false
			}
		}
		return true
	}, nil
}
