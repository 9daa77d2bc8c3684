//go:build linux

package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"berth/07-unionfs/layer"
	"berth/09-full/engine"
	"berth/09-full/specgen"
	"berth/09-full/store"
	"berth/09-full/volume"

	"berth/09-full/clikit"
)

// createFlags are the flags run and create share, under Docker's names:
// specgen's options, and the flags of stages 05 and 06 as they are.
type createFlags struct {
	o           specgen.Options
	entrypoint  string
	stopTimeout int
	pull        string // --pull: missing, always, never (pullmissing.go)
	quiet       bool   // -q: no pull output
	fs          *pflag.FlagSet
}

func (f *createFlags) add(fs *pflag.FlagSet) {
	f.fs = fs
	o := &f.o
	fs.SetInterspersed(false) // flags after IMAGE belong to the command
	noHelpShorthand(fs)
	fs.StringVar(&o.Name, "name", "", "assign a name to the container")
	fs.StringArrayVarP(&o.Env, "env", "e", nil, "set an environment variable (NAME=VALUE, or NAME for the host's)")
	fs.StringArrayVar(&o.EnvFiles, "env-file", nil, "read environment variables from a file")
	fs.StringArrayVarP(&o.Labels, "label", "l", nil, "set a label on the container (KEY=VALUE)")
	fs.StringVarP(&o.Workdir, "workdir", "w", "", "working directory inside the container")
	fs.StringVarP(&o.User, "user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	fs.StringVar(&f.entrypoint, "entrypoint", "", "overwrite the default ENTRYPOINT of the image")
	fs.BoolVar(&o.Init, "init", false, "run an init inside the container that forwards signals and reaps processes")
	fs.BoolVar(&o.ReadOnly, "read-only", false, "mount the container's root filesystem as read only")
	fs.StringVarP(&o.Hostname, "hostname", "h", "", "container host name")
	fs.StringArrayVarP(&o.Publish, "publish", "p", nil, "publish a container's port(s) to the host: [[HOSTIP:][HOSTPORT]:]CONTAINERPORT[/PROTO], ranges as 8000-8010:8000-8010; no host port: a free one")
	fs.BoolVarP(&o.PublishAll, "publish-all", "P", false, "publish every port the image EXPOSEs, each to a free host port")
	fs.StringVar(&o.Network, "network", "", "connect a container to a network: bridge, host, none, container:NAME_OR_ID, a user-defined network's name (slirp4netns without root)")
	fs.StringArrayVar(&o.NetworkAliases, "network-alias", nil, "add a network-scoped alias for the container (a user-defined network)")
	fs.StringVar(&o.IP, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	fs.StringVar(&o.MAC, "mac-address", "", "container MAC address (e.g., 92:d0:c6:0a:29:33)")
	fs.StringArrayVar(&o.DNSSearch, "dns-search", nil, "set custom DNS search domains")
	fs.StringArrayVar(&o.DNSOptions, "dns-option", nil, "set DNS options")
	fs.StringArrayVar(&o.AddHosts, "add-host", nil, "add a custom host-to-IP mapping (host:ip)")
	fs.StringVar(&o.Network, "net", "", "connect a container to a network (the older name of --network)")
	_ = fs.MarkHidden("net")
	fs.StringArrayVar(&o.DNS, "dns", nil, "set custom DNS servers")
	fs.BoolVarP(&o.Tty, "tty", "t", false, "allocate a pseudo-TTY")
	fs.BoolVarP(&o.Interactive, "interactive", "i", false, "keep STDIN open even if not attached")
	fs.StringVar(&o.Restart, "restart", "no", "restart policy to apply when a container exits: no, on-failure[:max-retries], always, unless-stopped")
	fs.StringVar(&o.StopSignal, "stop-signal", "", "signal to stop the container (default SIGTERM)")
	fs.IntVar(&f.stopTimeout, "stop-timeout", 0, "timeout (in seconds) to stop a container (default 10)")
	fs.StringVar(&o.LogDriver, "log-driver", "json-file", "logging driver for the container (json-file)")
	fs.StringArrayVar(&o.LogOpts, "log-opt", nil, "log driver options: max-size=SIZE, max-file=N")
	fs.StringVar(&o.Rootfs, "rootfs", "", "run on this directory (as the bottom layer) instead of an image")
	fs.StringArrayVarP(&o.Volumes, "volume", "v", nil, "mount a volume: NAME:CTRPATH[:ro] (a named one, made on first use), HOSTDIR:CTRPATH[:ro] (a bind), or CTRPATH (an anonymous one)")
	fs.StringArrayVar(&o.Mounts, "mount", nil, "attach a filesystem mount: type=bind|volume|tmpfs,source=,destination=,readonly,tmpfs-size=,tmpfs-mode=,volume-nocopy")
	fs.StringArrayVar(&o.VolumesFrom, "volumes-from", nil, "mount the volumes of a container: CONTAINER[:ro|rw]")
	fs.StringVar(&f.pull, "pull", pullMissing, `pull image before running ("always", "missing", "never")`)
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "suppress the pull output")
	fs.StringVar(&o.StorageDriver, "storage-driver", "auto", "overlay, copy, or auto (overlay if it mounts here)")
	o.Cgroup.AddFlags(fs)
	_ = fs.MarkHidden("stats") // 06's live table; berth has its own verb, stats
	o.UserNS.AddFlags(fs)
	fs.StringVar(&o.UserNSMode, "userns", "", "user namespace: host (root: none, the default; without root: the one you always get, you are its root), keep-id (without root: your uid and gid are the same inside, and the command runs as you)")
	o.Security.AddFlags(fs)
	o.Health.AddFlags(fs)
}

// options finishes the options once the flags are parsed.
func (f *createFlags) options() (*specgen.Options, error) {
	o := &f.o
	if f.fs.Changed("entrypoint") {
		o.Entrypoint = &f.entrypoint
	}
	if f.fs.Changed("stop-timeout") {
		o.StopTimeout = &f.stopTimeout
	}
	if err := validPull(f.pull); err != nil {
		return nil, err
	}
	if f.fs.Changed("stats") {
		return nil, errors.New("--stats is stage 06's: use berth stats CONTAINER")
	}
	return o, nil
}

// create makes the record and the container (its init waiting): the part
// of run and create that is the same.
func (a *app) create(f *createFlags, args []string) (*engine.Engine, *store.Record, error) {
	o, err := f.options()
	if err != nil {
		return nil, nil, clikit.Usage("%v", err)
	}
	e, err := a.Engine()
	if err != nil {
		return nil, nil, err
	}
	ref, rest := "", args
	if o.Rootfs == "" {
		if len(args) == 0 {
			return nil, nil, clikit.Usage("\"berth run\" requires at least 1 argument: berth run [OPTIONS] IMAGE [COMMAND] [ARG...] (or --rootfs DIR COMMAND)")
		}
		ref, rest = args[0], args[1:]
		if err := a.ensureImage(e.DataRoot, ref, f.pull, f.quiet); err != nil {
			return nil, nil, err
		}
	}
	rec, err := CreateContainer(e, o, ref, rest)
	return e, rec, err
}

// CreateContainer is create's work once the options are known, for the
// command line and for berth daemon's POST /containers/create alike:
// the record (bad options: a Usage error), its named volumes, the
// container. A record whose container could not be made is returned
// with the error, as run --rm removes it.
func CreateContainer(e *engine.Engine, o *specgen.Options, ref string, rest []string) (*store.Record, error) {
	if other, ok := strings.CutPrefix(o.Network, "container:"); ok {
		if _, err := e.Store.Get(other); err != nil {
			return nil, clikit.Usage("%s", clikit.Describe(err))
		}
	}
	rec, err := specgen.Generate(o, ref, rest, specgen.Roots{Data: e.DataRoot, State: e.StateRoot})
	if err != nil {
		return nil, clikit.Usage("%v", err)
	}
	set, err := engine.DecodeSettings(rec.Settings)
	if err != nil {
		return nil, err
	}
	vs := volume.New(e.DataRoot)
	made, err := makeVolumes(vs, set.Volumes)
	if err != nil {
		return nil, clikit.Usage("%v", err)
	}
	if err := e.Store.Create(rec); err != nil {
		undoVolumes(vs, made)
		return nil, clikit.Usage("%v", err)
	}
	if err := e.Create(rec); err != nil {
		return rec, err
	}
	return rec, nil
}

func (a *app) createCommand() *cobra.Command {
	f := &createFlags{}
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container: set up, its command waiting to be started",
		RunE: func(cmd *cobra.Command, args []string) error {
			_, rec, err := a.create(f, args)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.Stdout, rec.ID)
			return nil
		},
	}
	f.add(cmd.Flags())
	return cmd
}

// makeVolumes creates the named volumes a new container's -v and --mount
// name (created on first use, as Docker) and its anonymous ones, once the
// command line is known good. It returns those it made, for undo.
func makeVolumes(vs *volume.Store, vols []layer.Volume) ([]string, error) {
	var made []string
	for _, v := range vols {
		if v.Name == "" {
			continue
		}
		var labels map[string]string
		if v.Anonymous {
			labels = map[string]string{volume.AnonymousLabel: ""}
		}
		_, created, err := vs.Create(v.Name, labels, nil)
		if err != nil {
			undoVolumes(vs, made)
			return nil, err
		}
		if created {
			made = append(made, v.Name)
		}
	}
	return made, nil
}

func undoVolumes(vs *volume.Store, made []string) {
	for _, n := range made {
		_ = vs.Remove(n)
	}
}
