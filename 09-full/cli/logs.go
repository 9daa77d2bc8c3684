//go:build linux

package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"berth/09-full/logfile"
	"berth/09-full/store"

	"berth/09-full/clikit"
)

func (a *app) logsCommand() *cobra.Command {
	var follow, timestamps bool
	var tail, since, until string
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.Engine()
			if err != nil {
				return err
			}
			rec, err := e.Store.Get(args[0])
			if err != nil {
				return err
			}
			o := logfile.ReadOptions{Tail: -1, Follow: follow}
			if tail != "all" && tail != "" {
				n, err := strconv.Atoi(tail)
				if err != nil {
					return clikit.Usage("invalid --tail %q: a number of lines, or all", tail)
				}
				o.Tail = n
			}
			now := time.Now()
			if o.Since, err = parseTime(since, now); err != nil {
				return clikit.Usage("invalid --since: %v", err)
			}
			if o.Until, err = parseTime(until, now); err != nil {
				return clikit.Usage("invalid --until: %v", err)
			}
			// Following ends when the container's monitor has finished:
			// it flushed every line before it exited.
			o.Done = func() bool {
				st, err := e.Store.View(rec.ID)
				return err != nil || (!st.Running() && st.Status != store.Restarting && !st.MonitorAlive())
			}
			ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
			defer stop()
			return logfile.Read(ctx, rec.LogPath, o, func(en logfile.Entry) error {
				w := os.Stdout
				if en.Stream == logfile.Stderr {
					w = os.Stderr
				}
				if timestamps {
					fmt.Fprint(w, en.Time.UTC().Format(time.RFC3339Nano)+" ")
				}
				_, err := w.WriteString(en.Log)
				return err
			})
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&follow, "follow", "f", false, "follow log output")
	fs.BoolVarP(&timestamps, "timestamps", "t", false, "show timestamps")
	fs.StringVarP(&tail, "tail", "n", "all", "number of lines to show from the end of the logs")
	fs.StringVar(&since, "since", "", "show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)")
	fs.StringVar(&until, "until", "", "show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)")
	return cmd
}

// parseTime reads --since and --until as Docker does: an RFC 3339 time (or
// a date, or a date and time without a zone, taken as local), a Unix time
// (seconds, with a fraction), or a duration before now (10m, 1h30m).
func parseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	secs, frac, _ := strings.Cut(s, ".")
	if n, err := strconv.ParseInt(secs, 10, 64); err == nil {
		var ns int64
		if frac != "" {
			f, err := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("%q is not a time", s)
			}
			ns = f
		}
		return time.Unix(n, ns), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: give 2013-01-02T13:23:37Z, a Unix time or a duration such as 10m", s)
}
