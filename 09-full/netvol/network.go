//go:build linux

package netvol

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"

	mobynet "github.com/moby/moby/api/types/network"
	"github.com/spf13/cobra"

	"berth/04-net/network"
	"berth/09-full/clikit"
	"berth/09-full/engine"
	"berth/09-full/networks"
	"berth/internal/lockfile"
)

// networkCommand is `berth network`: Docker's network verbs over
// 09-full/networks (the records) and stage 04 (bridges, tables, leases).
func (a *app) networkCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "network", Short: "Manage networks"}
	cmd.AddCommand(a.networkCreateCommand(), a.networkLsCommand(), a.networkInspectCommand(),
		a.networkRmCommand(), a.networkPruneCommand())
	return cmd
}

func (a *app) networkCreateCommand() *cobra.Command {
	var r networks.Request
	var labels, opts []string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network: its own bridge, subnet and address leases",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if os.Geteuid() != 0 {
				return clikit.Usage("network create needs root: a network is a bridge and nftables rules on the host")
			}
			e, err := a.Engine()
			if err != nil {
				return err
			}
			r.Name = args[0]
			if r.Labels, err = keyValues("--label", labels); err != nil {
				return clikit.Usage("%v", err)
			}
			if r.Options, err = keyValues("--opt", opts); err != nil {
				return clikit.Usage("%v", err)
			}
			n, err := networks.Open(e.DataRoot).Create(r)
			if err != nil {
				return clikit.Usage("%v", err)
			}
			fmt.Fprintln(a.Stdout, n.ID)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&r.Driver, "driver", "d", "bridge", "driver to manage the network (bridge)")
	fs.StringVar(&r.Subnet, "subnet", "", "subnet in CIDR format (default: the first free /24 of 10.89.0.0/16)")
	fs.StringVar(&r.Gateway, "gateway", "", "IPv4 gateway for the subnet (its first address)")
	fs.StringVar(&r.IPRange, "ip-range", "", "allocate container addresses from a sub-range")
	fs.BoolVar(&r.Internal, "internal", false, "restrict external access to the network")
	fs.StringArrayVar(&labels, "label", nil, "set metadata on a network")
	fs.StringArrayVarP(&opts, "opt", "o", nil, "set driver specific options ("+networks.BridgeNameOption+"=NAME)")
	return cmd
}

func keyValues(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			return nil, fmt.Errorf("invalid %s %q: want KEY=VALUE", flag, kv)
		}
		out[k] = v
	}
	return out, nil
}

// networkRow is a line of `network ls`: the docker CLI's columns.
type networkRow struct{ ID, Name, Driver, Scope string }

func (a *app) networkLsCommand() *cobra.Command {
	var quiet bool
	var format string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.Engine()
			if err != nil {
				return err
			}
			all, err := networks.Open(e.DataRoot).List()
			if err != nil {
				return err
			}
			if quiet {
				format = "{{.ID}}"
			}
			if format == "" {
				format = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
			}
			var rows []any
			for _, n := range all {
				rows = append(rows, networkRow{ID: n.ID[:12], Name: n.Name, Driver: n.Driver, Scope: "local"})
			}
			header := networkRow{ID: "NETWORK ID", Name: "NAME", Driver: "DRIVER", Scope: "SCOPE"}
			if err := clikit.Render(a.Stdout, format, header, rows); err != nil {
				return clikit.Usage("%v", err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only display network IDs")
	cmd.Flags().StringVar(&format, "format", "", "format output using a Go template, or 'table TEMPLATE'")
	return cmd
}

func (a *app) networkInspectCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NETWORK [NETWORK...]",
		Short: "Display detailed information on one or more networks, in Docker's JSON shape",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.Engine()
			if err != nil {
				return err
			}
			var out []any
			var failed []string
			for _, ref := range args {
				n, err := networks.Open(e.DataRoot).Get(ref)
				if err != nil {
					failed = append(failed, err.Error())
					continue
				}
				out = append(out, networkInspect(e, n))
			}
			return a.PrintInspect(out, format, failed)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template")
	return cmd
}

// networkInspect is Docker's network.Inspect of a record, with the running
// containers that hold an address of it.
func networkInspect(e *engine.Engine, n *networks.Network) mobynet.Inspect {
	r := mobynet.Inspect{Network: mobynet.Network{
		Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: n.Driver,
		EnableIPv4: n.Subnet != "", Internal: n.Internal, Attachable: false,
		IPAM:    mobynet.IPAM{Driver: "default", Options: map[string]string{}},
		Options: map[string]string{}, Labels: map[string]string{},
	}, Containers: map[string]mobynet.EndpointResource{}}
	for k, v := range n.Options {
		r.Options[k] = v
	}
	if n.Bridge != "" {
		r.Options[networks.BridgeNameOption] = n.Bridge
	}
	for k, v := range n.Labels {
		r.Labels[k] = v
	}
	if n.Subnet != "" {
		c := mobynet.IPAMConfig{}
		c.Subnet, _ = netip.ParsePrefix(n.Subnet)
		c.Gateway, _ = netip.ParseAddr(n.Gateway)
		if n.IPRange != "" {
			c.IPRange, _ = netip.ParsePrefix(n.IPRange)
		}
		r.IPAM.Config = []mobynet.IPAMConfig{c}
	}
	for id, addr := range n.Leases(e.StateRoot) {
		ep := mobynet.EndpointResource{EndpointID: id}
		if rec, err := e.Store.Get(id); err == nil {
			ep.Name = rec.Name
		}
		ep.IPv4Address = addr
		r.Containers[id] = ep
	}
	return r
}

func (a *app) networkRmCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks: refused while a container uses one",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.Engine()
			if err != nil {
				return err
			}
			failed := false
			for _, ref := range args {
				if _, err := removeNetwork(e, ref); err != nil {
					fmt.Fprintf(a.Stderr, "berth: %v\n", err)
					failed = true
					continue
				}
				fmt.Fprintln(a.Stdout, ref)
			}
			if failed {
				return clikit.Silent(1)
			}
			return nil
		},
	}
}

// removeNetwork removes a user-defined network: its table, bridge and
// leases (stage 04), then its record.
func removeNetwork(e *engine.Engine, ref string) (*networks.Network, error) {
	st := networks.Open(e.DataRoot)
	n, err := st.Get(ref)
	if err != nil {
		return nil, err
	}
	if n.Predefined() {
		return nil, fmt.Errorf("%s is a pre-defined network and cannot be removed", n.Name)
	}
	sn, err := n.SubnetNet()
	if err != nil {
		return nil, err
	}
	inUse := func(ids []string) error {
		var names []string
		for _, id := range ids {
			if rec, err := e.Store.Get(id); err == nil {
				names = append(names, rec.Name)
			} else {
				names = append(names, id)
			}
		}
		sort.Strings(names)
		return &networkBusy{fmt.Sprintf("error while removing network: network %s has active endpoints (%s)", n.Name, strings.Join(names, ", "))}
	}
	if _, err := network.RemoveNetwork(e.StateRoot, n.Bridge, sn, inUse); err != nil {
		return nil, err
	}
	if err := st.Remove(n); err != nil {
		return nil, err
	}
	// The name server ends within a second of the record's removal
	// (cli/dns.go:serveDNS): wait for it, so that nothing of the network
	// is left when rm returns; then its locks and log go.
	for deadline := time.Now().Add(5 * time.Second); lockfile.Held(engine.DNSLock(e.StateRoot, n.Bridge)) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range []string{engine.DNSLock(e.StateRoot, n.Bridge), engine.DNSGate(e.StateRoot, n.Bridge), engine.DNSLog(e.StateRoot, n.Bridge)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return n, fmt.Errorf("remove %s: %w", p, err)
		}
	}
	return n, nil
}

// networkBusy: a container still uses the network (prune skips it).
type networkBusy struct{ msg string }

func (b *networkBusy) Error() string { return b.msg }

func (a *app) networkPruneCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.Engine()
			if err != nil {
				return err
			}
			all, err := networks.Open(e.DataRoot).List()
			if err != nil {
				return err
			}
			var removed []string
			for _, n := range all {
				if n.Predefined() || len(n.Leases(e.StateRoot)) > 0 {
					continue
				}
				if _, err := removeNetwork(e, n.ID); err != nil {
					var busy *networkBusy
					if !errors.As(err, &busy) && !errors.Is(err, networks.ErrNotFound) {
						return err
					}
					continue
				}
				removed = append(removed, n.Name)
			}
			if len(removed) > 0 {
				fmt.Fprintln(a.Stdout, "Deleted Networks:")
				for _, n := range removed {
					fmt.Fprintln(a.Stdout, n)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation (berth never prompts)")
	return cmd
}
