//go:build linux

package network

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/vishvananda/netlink"

	"berth/01-uts/spine"
	"berth/01-uts/spine/roots"
)

// Teardown removes what containers share and a single container's cleanup
// leaves in place: the bridge, berth's nftables table, the lease files, and
// any berth veth whose container is gone. First it collects the state of
// runtimes that died; it refuses while a container still holds an address.
// It returns what it removed, for the user to read.
func Teardown(stateRoot, bridge string, verbose bool) ([]string, error) {
	spine.Collect(stateRoot, verbose)
	dir := Dir(stateRoot)
	unlock, err := lockFile(filepath.Join(dir, "network.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	pools, err := pools(dir, stateRoot)
	if err != nil {
		return nil, err
	}
	var busy []string
	for _, p := range pools {
		leases, err := p.Leases()
		if err != nil {
			return nil, err
		}
		for addr, id := range leases {
			busy = append(busy, fmt.Sprintf("%s (%s)", id, addr))
		}
	}
	if len(busy) > 0 {
		sort.Strings(busy)
		return nil, fmt.Errorf("containers still use the network: %s: stop them first", strings.Join(busy, ", "))
	}

	var done []string
	alive := Alive(stateRoot)
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		id, ok := strings.CutPrefix(l.Attrs().Alias, "berth:")
		if !ok || l.Type() != "veth" || l.Attrs().Name != VethName(id) || alive(id) {
			continue
		}
		if err := deleteVeth(id); err != nil {
			return done, err
		}
		done = append(done, "veth "+l.Attrs().Name)
	}
	if ok, err := hasTable(bridge); err != nil {
		return done, err
	} else if ok {
		if err := deleteNAT(bridge); err != nil {
			return done, err
		}
		done = append(done, "nftables table ip "+TableOf(bridge))
	}
	if removed, err := deleteBridge(bridge); err != nil {
		return done, err
	} else if removed {
		done = append(done, "bridge "+bridge)
	}
	if _, err := os.Stat(dir); err == nil {
		if err := os.RemoveAll(dir); err != nil {
			return done, fmt.Errorf("remove %s: %w", dir, err)
		}
	}
	return done, nil
}

// RemoveNetwork removes one bridge network of many (a user-defined network
// of stage 09): its nftables table, its bridge and its lease file. It
// refuses, naming the holders, while a running container holds an address
// of the subnet. inUse words the refusal (ids to names, Docker's line).
func RemoveNetwork(stateRoot, bridge string, subnet *net.IPNet, inUse func(ids []string) error) ([]string, error) {
	dir := Dir(stateRoot)
	unlock, err := lockFile(filepath.Join(dir, "network.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	pool := &IPAM{Dir: dir, Subnet: subnet, Alive: Alive(stateRoot)}
	leases, err := pool.Leases()
	if err != nil {
		return nil, err
	}
	if len(leases) > 0 {
		var ids []string
		for _, id := range leases {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		return nil, inUse(ids)
	}
	var done []string
	if ok, err := hasTable(bridge); err != nil {
		return done, err
	} else if ok {
		if err := deleteNAT(bridge); err != nil {
			return done, err
		}
		done = append(done, "nftables table ip "+TableOf(bridge))
	}
	if removed, err := deleteBridge(bridge); err != nil {
		return done, err
	} else if removed {
		done = append(done, "bridge "+bridge)
	}
	// Leases() dropped dead holders' leases, and an empty lease file is
	// removed: nothing of the subnet is left in dir.
	return done, nil
}

// pools are the IPAMs that have a lease file in dir.
func pools(dir, stateRoot string) ([]*IPAM, error) {
	files, err := filepath.Glob(filepath.Join(dir, "leases-*.json"))
	if err != nil {
		return nil, err
	}
	var out []*IPAM
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "leases-"), ".json")
		i := strings.LastIndex(name, "-")
		if i < 0 {
			continue
		}
		_, subnet, err := net.ParseCIDR(name[:i] + "/" + name[i+1:])
		if err != nil {
			continue
		}
		out = append(out, &IPAM{Dir: dir, Subnet: subnet, Alive: Alive(stateRoot)})
	}
	return out, nil
}

func hasTable(bridge string) (bool, error) {
	conn, err := newConn()
	if err != nil {
		return false, err
	}
	return tableExists(conn, TableOf(bridge))
}

// CleanupCommand is the `cleanup` verb: remove the bridge, the nftables
// table and the leases, after collecting what killed runtimes left.
func CleanupCommand() *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "cleanup",
		Short: "Remove the bridge " + DefaultBridge + ", berth's nftables table and the address leases (once no container runs)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if os.Geteuid() != 0 {
				return errors.New("cleanup changes the host's network: run it with sudo")
			}
			stateRoot, err := roots.StateRootOf(cmd)
			if err != nil {
				return err
			}
			verbose = verbose || roots.DebugOf(cmd)
			done, err := Teardown(stateRoot, DefaultBridge, verbose)
			for _, d := range done {
				fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", d)
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "say what is collected")
	return cmd
}
