//go:build linux

package netvol

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"berth/04-net/network"
	"berth/09-full/engine"
	"berth/09-full/netdns"
	"berth/09-full/networks"
	"berth/internal/lockfile"
)

// UpstreamEnv overrides the host's resolv.conf as the name server's
// upstream (comma-separated ip:port): the tests' fake upstream.
const UpstreamEnv = "BERTH_DNS_UPSTREAM"

// dnsCommand is `berth internal dns NETWORK`: the network's name server
// (09-full/netdns), started by engine.ensureDNS. It prints "ready" once it
// listens, and ends when the network has had no container for 3 seconds,
// or is removed.
func (a *app) dnsCommand() *cobra.Command {
	return &cobra.Command{
		Use:  "dns NETWORK",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.Engine()
			if err != nil {
				return err
			}
			n, err := networks.Open(e.DataRoot).Get(args[0])
			if err != nil {
				return err
			}
			return serveDNS(e, n)
		},
	}
}

func serveDNS(e *engine.Engine, n *networks.Network) error {
	sn, err := n.SubnetNet()
	if err != nil {
		return err
	}
	// An internal network promises no way out, and a name server that
	// relays what it does not know would be one: a container could spell
	// what it wants to send in the names it asks for, and the host would
	// carry them to its resolvers (Docker's CVE-2024-29018). Its names
	// are answered; any other gets SERVFAIL.
	var up []string
	if !n.Internal {
		if up, err = upstream(); err != nil {
			return err
		}
	}
	logf := netdns.LogTo(os.Stderr, engine.DNSLogMax)
	// Bound first: a second server of the same network finds the port
	// taken, and the first is then the one that answers.
	pc, l, err := netdns.Listen(n.Gateway)
	if err != nil {
		if !errors.Is(err, syscall.EADDRINUSE) {
			return err
		}
		// Ours (it holds the lock once bound), or another program's
		// (a name server bound to every address): then say so, rather
		// than leave the containers with a server that is not berth's.
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if lockfile.Held(engine.DNSLock(e.StateRoot, n.Bridge)) {
				fmt.Println("ready")
				return nil
			}
		}
		return fmt.Errorf("%w: another program than berth listens on port 53 of %s", err, n.Gateway)
	}
	// A server on its way out may hold the lock a moment longer.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	main, err := lockfile.Acquire(ctx, engine.DNSLock(e.StateRoot, n.Bridge), lockfile.Exclusive)
	cancel()
	if err != nil {
		pc.Close()
		l.Close()
		return err
	}
	// Not unlocked on the way out but by the exit itself: a `network rm`
	// waiting for the lock then knows the process is gone.
	_ = main
	pool := &network.IPAM{Dir: network.Dir(e.StateRoot), Subnet: sn, Alive: network.Alive(e.StateRoot)}
	srv := &netdns.Server{Subnet: sn, Upstream: up, Names: namesOf(e, pool, sn), Logf: logf}
	// Either loop ends only on an error of its socket (the sockets are
	// closed below only on the way out): the process then exits rather
	// than hold the lock, which tells every container's start that the
	// network is served, while serving nothing.
	ended := make(chan error, 2)
	go func() { ended <- fmt.Errorf("udp: %v", srv.ServeUDP(pc)) }()
	go func() { ended <- fmt.Errorf("tcp: %v", srv.ServeTCP(l)) }()
	fmt.Println("ready")
	os.Stdout.Close()
	logf("dns: network %s: serving on %s:53, upstream %v", n.Name, n.Gateway, up)

	idle := 0
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-ended:
			pc.Close()
			l.Close()
			logf("dns: network %s: %v, exiting", n.Name, err)
			return fmt.Errorf("name server of network %s: %w", n.Name, err)
		case <-tick.C:
		}
		if _, err := networks.Open(e.DataRoot).Get(n.ID); err != nil {
			break // the network was removed
		}
		gate, err := lockfile.TryAcquire(engine.DNSGate(e.StateRoot, n.Bridge), lockfile.Exclusive)
		if err != nil {
			idle = 0 // a container is arriving
			continue
		}
		leases, err := pool.Leases()
		if err != nil || len(leases) > 0 {
			idle = 0
			gate.Unlock()
			continue
		}
		if idle++; idle >= 6 {
			// Leaving with the gate held: no container can arrive
			// before the lock says no server runs.
			pc.Close()
			l.Close()
			main.Unlock()
			gate.Unlock()
			logf("dns: network %s: no container left, exiting", n.Name)
			return nil
		}
		gate.Unlock()
	}
	pc.Close()
	l.Close()
	logf("dns: network %s removed, exiting", n.Name)
	return nil
}

func upstream() ([]string, error) {
	if v := os.Getenv(UpstreamEnv); v != "" {
		var out []string
		for _, s := range strings.Split(v, ",") {
			if _, _, err := net.SplitHostPort(s); err != nil {
				return nil, fmt.Errorf("%s: %q is not ip:port", UpstreamEnv, s)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return netdns.HostUpstream("/etc/resolv.conf")
}

// namesOf answers from the network's leases: each running container's
// name, short id and --network-alias, on its address. The table is made
// again when the lease file changes (a container came or went), and at
// least every second (a holder may have died without releasing).
func namesOf(e *engine.Engine, pool *network.IPAM, sn *net.IPNet) netdns.Names {
	var mu sync.Mutex
	var table map[string][]net.IP
	var stamp string
	var at time.Time
	return func() map[string][]net.IP {
		mu.Lock()
		defer mu.Unlock()
		now := ""
		if fi, err := os.Stat(pool.Path()); err == nil {
			now = fmt.Sprint(fi.ModTime().UnixNano(), fi.Size())
		}
		if table != nil && now == stamp && time.Since(at) < time.Second {
			return table
		}
		leases, err := pool.Leases()
		if err != nil {
			return table
		}
		t := map[string][]net.IP{}
		for addr, id := range leases {
			ip := net.ParseIP(addr)
			rec, err := e.Store.Get(id)
			if ip == nil || err != nil {
				continue
			}
			names := []string{rec.Name, rec.ID[:12]}
			if cfg, err := engine.ConfigOf(rec); err == nil {
				names = append(names, cfg.Settings.Network.Aliases...)
			}
			for _, nm := range names {
				nm = strings.ToLower(nm)
				t[nm] = append(t[nm], ip)
			}
		}
		table, stamp, at = t, now, time.Now()
		return table
	}
}
