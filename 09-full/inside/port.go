//go:build linux

package inside

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"berth/09-full/engine"

	"berth/09-full/clikit"
)

// portCommand is `berth port CONTAINER [PRIVATE_PORT[/PROTO]]`: the
// container's published ports (stage 04's), as docker port prints them.
func (a *app) portCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.Engine()
			if err != nil {
				return err
			}
			rec, err := e.Store.Get(args[0])
			if err != nil {
				return err
			}
			cfg, err := engine.ConfigOf(rec)
			if err != nil {
				return err
			}
			port, proto := "", ""
			if len(args) == 2 {
				var ok bool
				port, proto, ok = strings.Cut(args[1], "/")
				if !ok {
					proto = "tcp"
				}
				if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
					return clikit.Usage("invalid port %q: want PRIVATE_PORT[/PROTO], such as 80/tcp", args[1])
				}
			}
			found := false
			for _, p := range cfg.Settings.Network.Ports {
				if port != "" && (strconv.Itoa(int(p.CtrPort)) != port || p.Proto != proto) {
					continue
				}
				host := p.HostIP
				if host == "" {
					host = "0.0.0.0"
				}
				found = true
				if port != "" {
					fmt.Fprintf(a.Stdout, "%s:%d\n", host, p.HostPort)
				} else {
					fmt.Fprintf(a.Stdout, "%d/%s -> %s:%d\n", p.CtrPort, p.Proto, host, p.HostPort)
				}
			}
			if port != "" && !found {
				return fmt.Errorf("no public port '%s/%s' published for %s", port, proto, args[0])
			}
			return nil
		},
	}
}
