//go:build linux

package cgroup

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"berth/01-uts/spine"
	"berth/01-uts/spine/roots"
)

// Commands are the verbs that work on a running container's group:
// stats, pause and resume. They find it through the state directory.
func Commands() []*cobra.Command {
	return []*cobra.Command{statsCommand(), freezeCommand(true), freezeCommand(false)}
}

// find returns the group of a running container.
func find(root, id string) (*Group, error) {
	if err := spine.ValidID(id); err != nil {
		return nil, spine.Exitf(1, "%v", err)
	}
	live, err := spine.Live(root)
	if err != nil {
		return nil, err
	}
	if !contains(live, id) {
		return nil, spine.Exitf(1, "no running container %q (state root %s)", id, root)
	}
	c, steps, _, err := spine.ReadState(filepath.Join(root, id))
	if err != nil {
		return nil, err
	}
	hasGroup := false
	for _, s := range steps {
		hasGroup = hasGroup || s.Name() == "cgroup"
	}
	if !hasGroup {
		return nil, spine.Exitf(1, "container %s has no cgroup of its own", id)
	}
	mode, err := DetectMode()
	if err != nil {
		return nil, err
	}
	path, err := groupOf(c)
	if err != nil {
		return nil, err
	}
	g, err := Load(mode, path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, spine.Exitf(1, "container %s has no cgroup (it is starting or stopping)", id)
	}
	return g, err
}

func statsCommand() *cobra.Command {
	var (
		noStream bool
		format   string
	)
	cmd := &cobra.Command{
		Use:   "stats [ID...]",
		Short: "Show running containers' CPU, memory, PIDs and block I/O, as docker stats",
		RunE: func(cmd *cobra.Command, ids []string) error {
			root, err := roots.StateRootOf(cmd)
			if err != nil {
				return err
			}
			if format != "table" && format != "json" && format != "{{json .}}" {
				return fmt.Errorf("unknown --format %q: use table or json", format)
			}
			all := len(ids) == 0
			out := os.Stdout
			clear := !noStream && format == "table" && term.IsTerminal(int(out.Fd()))
			prev := map[string]Sample{}
			for first := true; ; first = false {
				if all {
					live, err := spine.Live(root)
					if err != nil {
						return err
					}
					ids = live
				}
				var rows []Sample
				for _, id := range ids {
					g, err := find(root, id)
					if err != nil {
						if all || !first {
							continue // gone meanwhile, or not ours
						}
						return err
					}
					s, err := g.Sample()
					if err != nil {
						continue
					}
					s.ID = id
					if p, ok := prev[id]; ok {
						s.Since(p)
						rows = append(rows, s)
					}
					prev[id] = s
				}
				if first {
					// A CPU percentage needs two samples.
					time.Sleep(time.Second)
					continue
				}
				if format == "table" {
					if clear {
						fmt.Fprint(out, "\033[2J\033[H")
					}
					t := NewTable(out)
					t.Header()
					for _, s := range rows {
						t.Row(s)
					}
				} else {
					enc := json.NewEncoder(out)
					for _, s := range rows {
						enc.Encode(s)
					}
				}
				if noStream || (!all && len(rows) == 0) {
					return nil
				}
				time.Sleep(time.Second)
			}
		},
	}
	cmd.Flags().BoolVar(&noStream, "no-stream", false, "print one sample and exit")
	cmd.Flags().StringVar(&format, "format", "table", "table, or json (one object per container and sample)")
	return cmd
}

// freezeCommand is pause (freeze) or resume (thaw).
func freezeCommand(pause bool) *cobra.Command {
	use, short, aliases := "resume ID", "Thaw a paused container (cgroup freezer)", []string{"unpause"}
	if pause {
		use, short, aliases = "pause ID", "Freeze every process of a container (cgroup freezer)", nil
	}
	cmd := &cobra.Command{
		Use:     use,
		Short:   short,
		Aliases: aliases,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			root, err := roots.StateRootOf(cmd)
			if err != nil {
				return err
			}
			g, err := find(root, id)
			if err != nil {
				return err
			}
			frozen, err := g.Frozen()
			if err != nil {
				return fmt.Errorf("read freezer state of %s: %w", g.Path(), err)
			}
			switch {
			case pause && frozen:
				return spine.Exitf(1, "container %s is already paused", id)
			case !pause && !frozen:
				return spine.Exitf(1, "container %s is not paused", id)
			case pause:
				err = g.Freeze(cmd.Context())
			default:
				err = g.Thaw(cmd.Context())
			}
			if err != nil {
				return fmt.Errorf("%s %s: %w", cmd.Name(), id, err)
			}
			fmt.Println(id)
			return nil
		},
	}
	return cmd
}
