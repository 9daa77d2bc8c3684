//go:build linux

package cli

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	imgstore "berth/08-image/store"
	"berth/09-full/engine"
	"berth/09-full/store"

	"berth/09-full/clikit"
)

// Docker's default: docker ps's seven columns.
const psTable = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

func (a *app) psCommand() *cobra.Command {
	var all, quiet, noTrunc, latest bool
	var last int
	var filters []string
	var format string
	cmd := &cobra.Command{
		Use:     "ps [OPTIONS]",
		Aliases: []string{"ls"},
		Short:   "List containers",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.Engine()
			if err != nil {
				return err
			}
			match, err := parseFilters(e, filters)
			if err != nil {
				return clikit.Usage("%v", err)
			}
			if latest {
				last = 1
			}
			recs, err := e.Store.List()
			if err != nil {
				return err
			}
			var rows []any
			for _, r := range recs {
				st, err := e.Store.View(r.ID)
				if err != nil {
					continue // removed meanwhile
				}
				row := &psRow{rec: r, st: st, trunc: !noTrunc}
				if !all && last <= 0 && !st.Running() && st.Status != store.Restarting && !match.status {
					continue
				}
				if !match.ok(e, row) {
					continue
				}
				rows = append(rows, row)
				if last > 0 && len(rows) == last {
					break
				}
			}
			if quiet {
				format = "{{.ID}}"
			}
			if format == "" {
				format = psTable
			}
			return clikit.Render(a.Stdout, format, psHeader{}, rows)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	fs.BoolVarP(&quiet, "quiet", "q", false, "only display container IDs")
	fs.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	fs.IntVarP(&last, "last", "n", -1, "show n last created containers (includes all states)")
	fs.BoolVarP(&latest, "latest", "l", false, "show the latest created container (includes all states)")
	fs.StringArrayVarP(&filters, "filter", "f", nil, "filter output based on conditions provided: status=, name=, label=, ancestor=, id=")
	fs.StringVar(&format, "format", "", "format output using a Go template, or 'table TEMPLATE'")
	return cmd
}

// psRow is one container as docker ps's template sees it.
type psRow struct {
	rec   *store.Record
	st    *store.State
	trunc bool
}

func (r *psRow) ID() string {
	if r.trunc {
		return r.rec.ID[:12]
	}
	return r.rec.ID
}

func (r *psRow) Image() string {
	if r.rec.Image.Ref != "" {
		return r.rec.Image.Ref
	}
	if cfg, err := engine.ConfigOf(r.rec); err == nil && len(cfg.Settings.Layers) > 0 {
		return cfg.Settings.Layers[len(cfg.Settings.Layers)-1] // --rootfs DIR
	}
	return ""
}

func (r *psRow) Command() string {
	args := r.rec.Spec.Process.Args
	if cfg, err := engine.ConfigOf(r.rec); err == nil {
		args = cfg.Command()
	}
	cmd := strings.Join(args, " ")
	if r.trunc {
		cmd = clikit.Ellipsis(cmd, 20)
	}
	return strconv.Quote(cmd)
}

func (r *psRow) CreatedAt() string {
	return r.rec.Created.Local().Format("2006-01-02 15:04:05 -0700 MST")
}

func (r *psRow) RunningFor() string { return ago(r.rec.Created) }

func (r *psRow) Status() string { return statusText(r.st) + healthText(r.rec, r.st) }

func (r *psRow) State() string { return r.st.Status }

func (r *psRow) Names() string { return r.rec.Name }

func (r *psRow) Labels() string {
	var kv []string
	for k, v := range r.rec.Labels {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

func (r *psRow) Label(name string) string { return r.rec.Labels[name] }

func (r *psRow) Ports() string {
	cfg, err := engine.ConfigOf(r.rec)
	if err != nil {
		return ""
	}
	var out []string
	for _, p := range cfg.Settings.Network.Ports {
		out = append(out, p.String())
	}
	return strings.Join(out, ", ")
}

func (r *psRow) Networks() string {
	cfg, err := engine.ConfigOf(r.rec)
	if err != nil {
		return ""
	}
	return cfg.Settings.Network.Mode
}

func (r *psRow) Mounts() string {
	cfg, err := engine.ConfigOf(r.rec)
	if err != nil {
		return ""
	}
	var out []string
	for _, v := range cfg.Settings.Volumes {
		out = append(out, clikit.Ellipsis(v.Source, 15))
	}
	return strings.Join(out, ",")
}

// psHeader answers each column with its header, as the docker CLI's.
type psHeader struct{}

func (psHeader) ID() string          { return "CONTAINER ID" }
func (psHeader) Image() string       { return "IMAGE" }
func (psHeader) Command() string     { return "COMMAND" }
func (psHeader) CreatedAt() string   { return "CREATED AT" }
func (psHeader) RunningFor() string  { return "CREATED" }
func (psHeader) Status() string      { return "STATUS" }
func (psHeader) State() string       { return "STATE" }
func (psHeader) Names() string       { return "NAMES" }
func (psHeader) Labels() string      { return "LABELS" }
func (psHeader) Label(string) string { return "LABEL" }
func (psHeader) Ports() string       { return "PORTS" }
func (psHeader) Networks() string    { return "NETWORKS" }
func (psHeader) Mounts() string      { return "MOUNTS" }

// statusText is docker ps's STATUS.
func statusText(st *store.State) string {
	switch st.Status {
	case store.Running:
		return "Up " + units.HumanDuration(time.Since(st.StartedAt))
	case store.Paused:
		return "Up " + units.HumanDuration(time.Since(st.StartedAt)) + " (Paused)"
	case store.Restarting:
		return fmt.Sprintf("Restarting (%d) %s", st.ExitCode, ago(st.FinishedAt))
	case store.Removing:
		return "Removal In Progress"
	case store.Dead:
		return "Dead"
	case store.Exited:
		if st.FinishedAt.IsZero() {
			return fmt.Sprintf("Exited (%d)", st.ExitCode)
		}
		return fmt.Sprintf("Exited (%d) %s", st.ExitCode, ago(st.FinishedAt))
	}
	return "Created"
}

func ago(t time.Time) string { return units.HumanDuration(time.Since(t)) + " ago" }

// filters is ps --filter: each key may repeat (any of its values
// matches); different keys must all match.
type filters struct {
	by     map[string][]string
	status bool // a status filter shows stopped containers too
}

func parseFilters(e *engine.Engine, in []string) (*filters, error) {
	f := &filters{by: map[string][]string{}}
	for _, kv := range in {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("bad format of filter (expected name=value): %s", kv)
		}
		switch k {
		case "status":
			switch v {
			case store.Created, store.Running, store.Paused, store.Restarting, store.Removing, store.Exited, store.Dead:
			default:
				return nil, fmt.Errorf("invalid filter 'status=%s'", v)
			}
			f.status = true
		case "name":
			if _, err := regexp.Compile(v); err != nil {
				return nil, fmt.Errorf("invalid filter 'name=%s': %v", v, err)
			}
		case "label", "ancestor", "id":
		default:
			return nil, fmt.Errorf("invalid filter '%s'", k)
		}
		f.by[k] = append(f.by[k], v)
	}
	return f, nil
}

func (f *filters) ok(e *engine.Engine, r *psRow) bool {
	for k, vals := range f.by {
		any := false
		for _, v := range vals {
			if f.match(e, k, v, r) {
				any = true
				break
			}
		}
		if !any {
			return false
		}
	}
	return true
}

func (f *filters) match(e *engine.Engine, k, v string, r *psRow) bool {
	switch k {
	case "status":
		return r.st.Status == v
	case "name":
		ok, _ := regexp.MatchString(v, r.rec.Name)
		return ok
	case "id":
		return strings.HasPrefix(r.rec.ID, v)
	case "label":
		lk, lv, hasValue := strings.Cut(v, "=")
		got, ok := r.rec.Labels[lk]
		return ok && (!hasValue || got == lv)
	case "ancestor":
		return ancestor(e, r.rec, v)
	}
	return false
}

// ancestor: the container was made from image v (by the name it was
// given, or the image v names now, or an id prefix).
func ancestor(e *engine.Engine, rec *store.Record, v string) bool {
	if rec.Image.Ref == v || (rec.Image.ID != "" && (rec.Image.ID == v || strings.HasPrefix(strings.TrimPrefix(rec.Image.ID, "sha256:"), strings.TrimPrefix(v, "sha256:")))) {
		return true
	}
	img, err := imgstore.NewStore(e.DataRoot).Get(v)
	return err == nil && img.ID().String() == rec.Image.ID
}
