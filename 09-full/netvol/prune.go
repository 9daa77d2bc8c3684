//go:build linux

package netvol

import (
	"errors"

	"berth/09-full/engine"
	"berth/09-full/networks"
)

// PruneNetworks is system prune's network step, after its containers
// went: it removes every user-defined network no container uses and
// returns their names (docker's "Deleted Networks:"); the predefined
// bridge, host and none are never candidates. A network is in use while
// a container holds a lease on it (it runs, or is created and waiting)
// or while a container's record names it (one that does not run now but
// would join it at start: system prune kept it, so its network stays).
//
// The networks are listed before the records are read, as pruneVolumes
// does for volumes (09-full/cli/system.go): a container created on a
// listed network wrote its record before it could take a lease, so the
// records read after the list name it; the other order would let such a
// create slip between the reads and lose its network under it.
func PruneNetworks(e *engine.Engine) ([]string, error) {
	all, err := networks.Open(e.DataRoot).List()
	if err != nil {
		return nil, err
	}
	recs, err := e.Store.List()
	if err != nil {
		return nil, err
	}
	named := map[string]bool{}
	for _, r := range recs {
		set, err := engine.DecodeSettings(r.Settings)
		if err != nil {
			return nil, err // a record unread: the network it names may be in use
		}
		if n := set.Network.Name; n != "" {
			named[n] = true
		}
	}
	var removed []string
	for _, n := range all {
		if n.Predefined() || named[n.Name] || named[n.ID] || len(n.Leases(e.StateRoot)) > 0 {
			continue
		}
		if _, err := removeNetwork(e, n.ID); err != nil {
			var busy *networkBusy
			if errors.As(err, &busy) || errors.Is(err, networks.ErrNotFound) {
				continue // taken in the meantime, or removed by another prune
			}
			return removed, err
		}
		removed = append(removed, n.Name)
	}
	return removed, nil
}
