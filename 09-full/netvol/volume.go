//go:build linux

package netvol

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	units "github.com/docker/go-units"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"berth/09-full/clikit"
	"berth/09-full/engine"
	"berth/09-full/security"
	"berth/09-full/volume"
)

// volumeCommand is `berth volume`: the named and anonymous volumes of
// the data root (09-full/volume), with Docker's verbs and output.
func (a *app) volumeCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "volume", Short: "Manage volumes"}
	cmd.AddCommand(a.volumeCreateCommand(), a.volumeLsCommand(), a.volumeInspectCommand(), a.volumeRmCommand(), a.volumePruneCommand())
	return cmd
}

func (a *app) volumes() (*engine.Engine, *volume.Store, error) {
	e, err := a.Engine()
	if err != nil {
		return nil, nil, err
	}
	return e, volume.New(e.DataRoot), nil
}

// volumesAndUsers is what ls and prune start from: every volume, and
// the containers that list each (users).
func (a *app) volumesAndUsers() (*engine.Engine, *volume.Store, []*volume.Volume, map[string][]string, error) {
	e, vs, err := a.volumes()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	used, err := users(e)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	all, err := vs.List()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return e, vs, all, used, nil
}

// volumeKeyValues are --label or --opt as a map, never nil: a volume's
// Labels and Options print as {} when empty, as Docker's.
func volumeKeyValues(in []string, what string) (map[string]string, error) {
	out, err := keyValues(what, in)
	if out == nil && err == nil {
		out = map[string]string{}
	}
	return out, err
}

func (a *app) volumeCreateCommand() *cobra.Command {
	var labels, opts []string
	var driver string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume (a random name without one)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if driver != "local" {
				return clikit.Usage("volume driver %q: berth has the local driver", driver)
			}
			l, err := volumeKeyValues(labels, "label")
			if err != nil {
				return clikit.Usage("%v", err)
			}
			o, err := volumeKeyValues(opts, "option")
			if err != nil {
				return clikit.Usage("%v", err)
			}
			_, vs, err := a.volumes()
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			} else if name, err = volume.NewName(); err != nil {
				return err
			}
			if err := volume.CheckName(name); err != nil {
				return clikit.Usage("%v", err)
			}
			if o["type"] == "tmpfs" {
				// its o= is --tmpfs's options: checked as those are
				if err := security.AddTmpfs(&specs.Spec{}, "/v:"+o["o"]); o["o"] != "" && err != nil {
					return clikit.Usage("volume option o=%q: %v", o["o"], err)
				}
			}
			if _, _, err := vs.Create(name, l, o); err != nil {
				return clikit.Usage("%v", err)
			}
			fmt.Fprintln(a.Stdout, name)
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&labels, "label", "l", nil, "set metadata for a volume (KEY=VALUE)")
	cmd.Flags().StringArrayVarP(&opts, "opt", "o", nil, "set driver specific options: type=tmpfs, device=tmpfs, o=size=64m,mode=1777")
	cmd.Flags().StringVarP(&driver, "driver", "d", "local", "volume driver name")
	return cmd
}

// users maps each volume's name to the containers (ids) whose records
// list it, running or not: those a volume may not be removed from under.
func users(e *engine.Engine) (map[string][]string, error) {
	recs, err := e.Store.List()
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, r := range recs {
		set, err := engine.DecodeSettings(r.Settings)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w (its volumes may be in use: refusing)", r.ID, err)
		}
		for _, v := range set.Volumes {
			if v.Name != "" {
				out[v.Name] = append(out[v.Name], r.ID)
			}
		}
	}
	return out, nil
}

// volumeRow is one line of volume ls, with Docker's --format fields.
type volumeRow struct {
	v     *volume.Volume
	links int
}

func (r volumeRow) Name() string       { return r.v.Name }
func (r volumeRow) Driver() string     { return r.v.Driver }
func (r volumeRow) Scope() string      { return r.v.Scope }
func (r volumeRow) Mountpoint() string { return r.v.Mountpoint }
func (r volumeRow) CreatedAt() string  { return r.v.CreatedAt.Format("2006-01-02 15:04:05 -0700 MST") }
func (r volumeRow) Links() string      { return fmt.Sprint(r.links) }
func (r volumeRow) Size() string       { return units.HumanSize(float64(dirSize(r.v.Mountpoint))) }
func (r volumeRow) Labels() string {
	var kv []string
	for k, v := range r.v.Labels {
		kv = append(kv, k+"="+v)
	}
	return strings.Join(kv, ",")
}
func (r volumeRow) Label(k string) string { return r.v.Labels[k] }

type volumeHeader struct{}

func (volumeHeader) Name() string       { return "VOLUME NAME" }
func (volumeHeader) Driver() string     { return "DRIVER" }
func (volumeHeader) Scope() string      { return "SCOPE" }
func (volumeHeader) Mountpoint() string { return "MOUNTPOINT" }
func (volumeHeader) CreatedAt() string  { return "CREATED" }
func (volumeHeader) Links() string      { return "LINKS" }
func (volumeHeader) Size() string       { return "SIZE" }
func (volumeHeader) Labels() string     { return "LABELS" }

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

func (a *app) volumeLsCommand() *cobra.Command {
	var quiet bool
	var format string
	var filters []string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			match, err := volumeFilter(filters)
			if err != nil {
				return clikit.Usage("%v", err)
			}
			_, _, all, used, err := a.volumesAndUsers()
			if err != nil {
				return err
			}
			var rows []any
			for _, v := range all {
				if match(v, len(used[v.Name])) {
					rows = append(rows, volumeRow{v, len(used[v.Name])})
				}
			}
			switch {
			case quiet:
				format = "{{.Name}}"
			case format == "":
				format = "table {{.Driver}}\t{{.Name}}"
			}
			return clikit.Render(a.Stdout, format, volumeHeader{}, rows)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only display volume names")
	cmd.Flags().StringVar(&format, "format", "", "format output using a Go template (fields: .Name .Driver .Scope .Mountpoint .Labels .Links .Size .CreatedAt)")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "filter output: name=, label=KEY[=VALUE], dangling=true|false, driver=")
	return cmd
}

// volumeFilter is volume ls --filter: the values of one key are or'ed,
// the keys and'ed, as Docker's.
func volumeFilter(in []string) (func(*volume.Volume, int) bool, error) {
	by := map[string][]string{}
	for _, kv := range in {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("bad format of filter (expected name=value): %s", kv)
		}
		switch k {
		case "name", "label", "driver":
		case "dangling":
			if v != "true" && v != "false" && v != "1" && v != "0" {
				return nil, fmt.Errorf("invalid filter 'dangling=%s'", v)
			}
		default:
			return nil, fmt.Errorf("invalid filter '%s'", k)
		}
		by[k] = append(by[k], v)
	}
	return func(v *volume.Volume, links int) bool {
		for k, vals := range by {
			ok := false
			for _, want := range vals {
				switch k {
				case "name":
					ok = ok || strings.Contains(v.Name, want)
				case "driver":
					ok = ok || v.Driver == want
				case "dangling":
					ok = ok || (links == 0) == (want == "true" || want == "1")
				case "label":
					lk, lv, hasV := strings.Cut(want, "=")
					got, has := v.Labels[lk]
					ok = ok || (has && (!hasV || got == lv))
				}
			}
			if !ok {
				return false
			}
		}
		return true
	}, nil
}

func (a *app) volumeInspectCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] VOLUME [VOLUME...]",
		Short: "Display detailed information on one or more volumes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, vs, err := a.volumes()
			if err != nil {
				return err
			}
			var out []any
			var failed []string
			for _, name := range args {
				v, err := vs.Get(name)
				if err != nil {
					failed = append(failed, describeVolume(err, name).Error())
					continue
				}
				out = append(out, v)
			}
			return a.PrintInspect(out, format, failed)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template")
	return cmd
}

func describeVolume(err error, name string) error {
	if errors.Is(err, volume.ErrNotFound) {
		return fmt.Errorf("get %s: no such volume", name)
	}
	return err
}

func (a *app) volumeRmCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes (never one a container uses)",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, vs, err := a.volumes()
			if err != nil {
				return err
			}
			used, err := users(e)
			if err != nil {
				return err
			}
			failed := false
			for _, name := range args {
				err := removeVolume(e, vs, used, name)
				if errors.Is(err, volume.ErrNotFound) && force {
					continue // -f: a volume already gone is no error, as Docker
				}
				if err != nil {
					fmt.Fprintf(a.Stderr, "berth: %v\n", describeVolume(err, name))
					failed = true
					continue
				}
				fmt.Fprintln(a.Stdout, name)
			}
			if failed {
				return clikit.Silent(1)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not fail on a volume that does not exist (a volume in use is never removed)")
	return cmd
}

// removeVolume removes name unless a container, running or not, lists
// it: Docker's words (every container that uses it), with their names.
func removeVolume(e *engine.Engine, vs *volume.Store, used map[string][]string, name string) error {
	if ids := used[name]; len(ids) > 0 {
		var who []string
		for _, id := range ids {
			if rec, err := e.Store.Get(id); err == nil && rec.Name != "" {
				id += " (" + rec.Name + ")"
			}
			who = append(who, id)
		}
		return fmt.Errorf("remove %s: volume is in use - [%s]", name, strings.Join(who, ", "))
	}
	return vs.Remove(name)
}

func (a *app) volumePruneCommand() *cobra.Command {
	var force, all bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused anonymous volumes (-a: every unused volume)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			match, err := volumeFilter(filters)
			if err != nil {
				return clikit.Usage("%v", err)
			}
			what := "anonymous local volumes"
			if all {
				what = "all local volumes"
			}
			if !force && !a.Confirm("WARNING! This will remove "+what+" not used by at least one container.\n") {
				return nil
			}
			_, vs, vols, used, err := a.volumesAndUsers()
			if err != nil {
				return err
			}
			var gone []string
			var total int64
			for _, v := range vols {
				if len(used[v.Name]) > 0 || (!all && !v.Anonymous()) || !match(v, 0) {
					continue
				}
				n := dirSize(v.Mountpoint)
				if err := vs.Remove(v.Name); err != nil {
					fmt.Fprintf(a.Stderr, "berth: %v\n", err)
					continue
				}
				gone = append(gone, v.Name)
				total += n
			}
			a.Section("Deleted Volumes:", gone)
			fmt.Fprintf(a.Stdout, "Total reclaimed space: %s\n", units.HumanSize(float64(total)))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all unused volumes, not just anonymous ones")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "provide filter values (label=KEY[=VALUE])")
	return cmd
}
