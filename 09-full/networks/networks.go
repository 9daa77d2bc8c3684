//go:build linux

// Package networks keeps berth's networks as Docker has them: the three
// predefined ones (bridge, host, none) and user-defined bridge networks,
// each with its own bridge, subnet, address leases and nftables table.
// A record is a small JSON file, <data-root>/networks/<id>.json, written
// under <data-root>/networks/lock; nothing exists on the host until a
// container needs it: stage 04's step makes the bridge and the table on
// the first container's start (network.Step, with this record's Bridge,
// Subnet and Internal), and `network rm` removes them (network.RemoveNetwork).
package networks

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"berth/04-net/network"
	"berth/internal/lockfile"
)

// Network is one network's record.
type Network struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Created  time.Time         `json:"created"`
	Driver   string            `json:"driver"` // bridge, host, null
	Bridge   string            `json:"bridge,omitempty"`
	Subnet   string            `json:"subnet,omitempty"`
	Gateway  string            `json:"gateway,omitempty"`
	IPRange  string            `json:"ipRange,omitempty"`
	Internal bool              `json:"internal,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Options  map[string]string `json:"options,omitempty"`
}

// Predefined tells the three networks every berth has and none may remove.
func (n *Network) Predefined() bool {
	return n.Name == "bridge" || n.Name == "host" || n.Name == "none"
}

// ErrNotFound is a network that is not there.
var ErrNotFound = errors.New("network not found")

// BridgeNameOption is Docker's option naming a network's bridge
// (`-o com.docker.network.bridge.name=NAME`); by default it is br-<id>.
const BridgeNameOption = "com.docker.network.bridge.name"

// Store is the networks of one data root.
type Store struct{ Dir string }

func Open(dataRoot string) *Store { return &Store{Dir: filepath.Join(dataRoot, "networks")} }

// predefined are Docker's three, with ids fixed by their names so that
// every listing shows the same ones. The default bridge is stage 04's.
func predefined() []*Network {
	mk := func(name, driver string) *Network {
		sum := sha256.Sum256([]byte("berth network " + name))
		return &Network{ID: hex.EncodeToString(sum[:]), Name: name, Driver: driver}
	}
	br := mk("bridge", "bridge")
	br.Bridge, br.Subnet = network.DefaultBridge, network.DefaultSubnet
	if _, sn, err := net.ParseCIDR(network.DefaultSubnet); err == nil {
		br.Gateway = network.Gateway(sn).String()
	}
	return []*Network{br, mk("host", "host"), mk("none", "null")}
}

// List returns every network, the predefined first, then by name.
func (s *Store) List() ([]*Network, error) {
	out := predefined()
	entries, err := os.ReadDir(s.Dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", s.Dir, err)
	}
	var user []*Network
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		n, err := s.read(filepath.Join(s.Dir, e.Name()))
		if err != nil {
			return nil, err
		}
		user = append(user, n)
	}
	sort.Slice(user, func(i, j int) bool { return user[i].Name < user[j].Name })
	return append(out, user...), nil
}

func (s *Store) read(path string) (*Network, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	n := &Network{}
	if err := json.Unmarshal(b, n); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return n, nil
}

// Get finds a network by name, full id or unique id prefix, as Docker does.
func (s *Store) Get(ref string) (*Network, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	for _, n := range all {
		if n.Name == ref || n.ID == ref {
			return n, nil
		}
	}
	var found *Network
	for _, n := range all {
		if ref != "" && strings.HasPrefix(n.ID, ref) {
			if found != nil {
				return nil, fmt.Errorf("network %s is ambiguous (more than one id starts with it)", ref)
			}
			found = n
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, ref)
	}
	return found, nil
}

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// Request is what `network create` asks for.
type Request struct {
	Name, Driver, Subnet, Gateway, IPRange string
	Internal                               bool
	Labels, Options                        map[string]string
}

// Create checks the request and writes the record; a subnet not given is
// the first free /24 of 10.89.0.0/16 (podman's choice: beside the default
// bridge's 10.88.0.0/16). Overlapping another network's subnet, or a route
// the host has, is refused. Every error is the user's input: one line,
// nothing written.
func (s *Store) Create(r Request) (*Network, error) {
	if !validName.MatchString(r.Name) {
		return nil, fmt.Errorf("invalid network name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", r.Name)
	}
	if r.Driver == "" {
		r.Driver = "bridge"
	}
	if r.Driver != "bridge" {
		return nil, fmt.Errorf("network driver %q is not supported: berth's user-defined networks are bridges", r.Driver)
	}
	for k := range r.Options {
		if k != BridgeNameOption {
			return nil, fmt.Errorf("network option %q is not supported (berth knows %s)", k, BridgeNameOption)
		}
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", s.Dir, err)
	}
	l, err := lockfile.Acquire(context.Background(), filepath.Join(s.Dir, "lock"), lockfile.Exclusive)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()

	all, err := s.List()
	if err != nil {
		return nil, err
	}
	for _, n := range all {
		if n.Name == r.Name {
			return nil, fmt.Errorf("network with name %s already exists", r.Name)
		}
	}
	var id [32]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("random id: %w", err)
	}
	n := &Network{ID: hex.EncodeToString(id[:]), Name: r.Name, Created: time.Now().UTC(), Driver: r.Driver,
		Internal: r.Internal, Labels: r.Labels, Options: r.Options}
	n.Bridge = "br-" + n.ID[:12]
	if b := r.Options[BridgeNameOption]; b != "" {
		if len(b) > 15 || strings.ContainsAny(b, "/ \t\n:") {
			return nil, fmt.Errorf("invalid bridge name %q: at most 15 characters, no '/', ':' or spaces", b)
		}
		for _, o := range all {
			if o.Bridge == b {
				return nil, fmt.Errorf("bridge name %s is already network %s's", b, o.Name)
			}
		}
		if err := network.CheckBridgeName(b); err != nil {
			return nil, err
		}
		n.Bridge = b
	}
	subnet, err := s.subnet(r, all)
	if err != nil {
		return nil, err
	}
	n.Subnet = subnet.String()
	n.Gateway = network.Gateway(subnet).String()
	if r.Gateway != "" && net.ParseIP(r.Gateway).String() != n.Gateway {
		return nil, fmt.Errorf("invalid --gateway %s: a berth bridge's gateway is its subnet's first address, %s", r.Gateway, n.Gateway)
	}
	if r.IPRange != "" {
		ip, rng, err := net.ParseCIDR(r.IPRange)
		if err != nil || !ip.Equal(rng.IP) || !subnet.Contains(rng.IP) || !within(rng, subnet) {
			return nil, fmt.Errorf("invalid --ip-range %q: want a network inside %s, such as %s", r.IPRange, subnet, subnet)
		}
		if !network.RangeHasHosts(subnet, rng) {
			return nil, fmt.Errorf("invalid --ip-range %q: it holds no container address of %s (not the network's, the gateway's or the broadcast address)", r.IPRange, subnet)
		}
		n.IPRange = rng.String()
	}
	b, err := json.MarshalIndent(n, "", "  ")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(s.Dir, n.ID+".json")
	if err := os.WriteFile(path+".tmp", append(b, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return nil, fmt.Errorf("rename %s: %w", path, err)
	}
	return n, nil
}

func within(inner, outer *net.IPNet) bool {
	oi, _ := inner.Mask.Size()
	oo, _ := outer.Mask.Size()
	return outer.Contains(inner.IP) && oi >= oo
}

// subnet is the request's subnet, checked, or the first free one.
func (s *Store) subnet(r Request, all []*Network) (*net.IPNet, error) {
	free := func(sn *net.IPNet) error {
		for _, o := range all {
			if o.Subnet == "" {
				continue
			}
			_, on, err := net.ParseCIDR(o.Subnet)
			if err == nil && (on.Contains(sn.IP) || sn.Contains(on.IP)) {
				return fmt.Errorf("subnet %s overlaps network %s's %s", sn, o.Name, on)
			}
		}
		return network.CheckOverlap(sn)
	}
	if r.Subnet != "" {
		sn, err := network.ParseSubnet(r.Subnet)
		if err != nil {
			return nil, err
		}
		return sn, free(sn)
	}
	for i := 0; i < 256; i++ {
		sn := &net.IPNet{IP: net.IPv4(10, 89, byte(i), 0).To4(), Mask: net.CIDRMask(24, 32)}
		if free(sn) == nil {
			return sn, nil
		}
	}
	return nil, errors.New("no free subnet left in 10.89.0.0/16: give one with --subnet")
}

// Remove deletes a user-defined network's record (its bridge, table and
// leases are network.RemoveNetwork's, done first by the caller).
func (s *Store) Remove(n *Network) error {
	if n.Predefined() {
		return fmt.Errorf("%s is a pre-defined network and cannot be removed", n.Name)
	}
	path := filepath.Join(s.Dir, n.ID+".json")
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// SubnetNet parses the record's subnet.
func (n *Network) SubnetNet() (*net.IPNet, error) { return network.ParseSubnet(n.Subnet) }

// Leases maps the ids of the running containers on n to their address
// (stage 04's leases in the state root); empty for a network without a
// subnet or whose leases cannot be read.
func (n *Network) Leases(stateRoot string) map[string]netip.Prefix {
	out := map[string]netip.Prefix{}
	if n.Subnet == "" {
		return out
	}
	_, sn, err := net.ParseCIDR(n.Subnet)
	if err != nil {
		return out
	}
	pool := &network.IPAM{Dir: network.Dir(stateRoot), Subnet: sn, Alive: network.Alive(stateRoot)}
	leases, err := pool.Leases()
	if err != nil {
		return out
	}
	ones, _ := sn.Mask.Size()
	for addr, id := range leases {
		if a, err := netip.ParseAddr(addr); err == nil {
			out[id] = netip.PrefixFrom(a, ones)
		}
	}
	return out
}
