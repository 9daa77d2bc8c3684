//go:build linux

// Package network gives a container a network the way Docker's default
// bridge does: its own network namespace (clone with CLONE_NEWNET), a veth
// pair whose host end sits on the bridge berth0 and whose other end is the
// container's eth0, an address from a small file-locked IPAM, a default
// route through the bridge, outbound NAT and published ports with
// nftables, and its own /etc/hosts, /etc/hostname and /etc/resolv.conf.
// --net chooses among four modes: bridge (the above), none (only lo),
// host (no namespace of its own) and container:PID (join PID's namespace).
//
// Files: network.go (flags, the step and its order of work), bridge.go,
// veth.go, ipam.go, nat.go, ports.go, files.go, cleanup.go.
package network

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/pflag"
	"github.com/vishvananda/netlink"

	"berth/01-uts/spine"
)

func init() { spine.Register("network", func() spine.Step { return &Step{} }) }

// The network modes of --net.
const (
	ModeBridge    = "bridge"
	ModeNone      = "none"
	ModeHost      = "host"
	ModeContainer = "container"
)

// Options are the network flags of `run`.
type Options struct {
	Net     string
	Subnet  string
	Publish []string
	DNS     []string
	// OtherModes are --net modes a later stage's option carries out
	// (05-user adds slirp4netns). This stage accepts them, gives them a
	// network namespace with lo up, and leaves the rest to that stage.
	OtherModes []string

	fs *pflag.FlagSet
}

func (o *Options) AddFlags(fs *pflag.FlagSet) {
	o.fs = fs
	modes := strings.Join(append([]string{"bridge", "none", "host"}, o.OtherModes...), ", ")
	fs.StringVar(&o.Net, "net", ModeBridge, "network mode: "+modes+" or container:PID (without root: none by default)")
	fs.StringVar(&o.Subnet, "subnet", DefaultSubnet, "IPv4 subnet of the bridge "+DefaultBridge+" (its first address is the gateway)")
	fs.StringArrayVarP(&o.Publish, "publish", "p", nil, "publish a container port: [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|udp] (repeatable)")
	fs.StringArrayVar(&o.DNS, "dns", nil, "nameserver for the container's /etc/resolv.conf (repeatable; default: the host's)")
}

// Configure checks every flag (nothing is created yet, so a bad one leaves
// nothing behind) and asks the spine for the right network namespace.
func (o *Options) Configure(c *spine.Container) ([]spine.Step, error) {
	s := &Step{Bridge: DefaultBridge}
	rootless := os.Geteuid() != 0
	if rootless && (o.fs == nil || !o.fs.Changed("net")) {
		// A bridge, veth pairs and nftables rules change the host's
		// network: only root may. Without root the default is lo alone.
		o.Net = ModeNone
	}
	mode, arg, _ := strings.Cut(o.Net, ":")
	if rootless && len(o.Publish) > 0 {
		return nil, errors.New("-p needs root: published ports are nftables rules on the host's network")
	}
	if rootless && (o.Net == ModeBridge || mode == ModeContainer) {
		return nil, fmt.Errorf("--net=%s needs root (it changes the host's network); without root use --net=%s",
			o.Net, strings.Join(append([]string{ModeNone}, o.OtherModes...), " or --net="))
	}
	switch {
	case o.Net == ModeBridge:
		subnet, err := ParseSubnet(o.Subnet)
		if err != nil {
			return nil, err
		}
		s.Subnet = subnet.String()
		if s.Ports, err = ParsePorts(o.Publish); err != nil {
			return nil, err
		}
		c.AddNamespace(specs.NetworkNamespace, "")
	case o.Net == ModeNone:
		c.AddNamespace(specs.NetworkNamespace, "")
	case o.Net == ModeHost:
		c.RemoveNamespace(specs.NetworkNamespace)
	case mode == ModeContainer:
		pid, err := strconv.Atoi(arg)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("invalid --net %q: want container:PID, the host pid of a running container's process", o.Net)
		}
		path := fmt.Sprintf("/proc/%d/ns/net", pid)
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("--net %s: no process %d (is the container still running?)", o.Net, pid)
		}
		s.Pid = pid
		c.AddNamespace(specs.NetworkNamespace, path)
		mode = ModeContainer
	case slices.Contains(o.OtherModes, o.Net):
		c.AddNamespace(specs.NetworkNamespace, "")
	default:
		return nil, fmt.Errorf("unknown network mode --net %q: use %s or container:PID", o.Net,
			strings.Join(append([]string{ModeBridge, ModeNone, ModeHost}, o.OtherModes...), ", "))
	}
	s.Mode = mode
	if len(o.Publish) > 0 && s.Mode != ModeBridge {
		return nil, fmt.Errorf("-p publishes ports through the bridge: it needs --net=bridge, not --net=%s", o.Net)
	}
	for _, d := range o.DNS {
		ip := net.ParseIP(d)
		if ip == nil {
			return nil, fmt.Errorf("invalid --dns %q: want an IP address", d)
		}
		s.DNS = append(s.DNS, ip.String())
	}
	return []spine.Step{s}, nil
}

// ParseSubnet reads --subnet: IPv4, at most /30 (a gateway and one
// container), given by its network address.
func ParseSubnet(s string) (*net.IPNet, error) {
	ip, subnet, err := net.ParseCIDR(s)
	if err != nil || ip.To4() == nil {
		return nil, fmt.Errorf("invalid --subnet %q: want an IPv4 network such as %s", s, DefaultSubnet)
	}
	ones, _ := subnet.Mask.Size()
	if ones > 30 || ones < 8 {
		return nil, fmt.Errorf("invalid --subnet %q: the prefix length must be between /8 and /30", s)
	}
	if !ip.Equal(subnet.IP) {
		return nil, fmt.Errorf("invalid --subnet %q: host bits are set; did you mean %s?", s, subnet)
	}
	if ip.IsLoopback() || ip.IsMulticast() || subnet.Contains(net.IPv4zero) {
		return nil, fmt.Errorf("invalid --subnet %q: not a usable private network", s)
	}
	subnet.IP = subnet.IP.To4()
	return subnet, nil
}

// Step is the network of one container. Its exported fields are its
// configuration, fixed by Configure and recorded in state.json before
// anything is created; everything Cleanup removes is named from them and
// the container id alone (veth bth<id>, the lease of <id>, the nftables
// rules tagged "container <id>:"), so that a later run can clean up after a
// runtime that was killed at any point.
type Step struct {
	Mode   string   `json:"mode"`
	Bridge string   `json:"bridge,omitempty"`
	Subnet string   `json:"subnet,omitempty"`
	Ports  []Port   `json:"ports,omitempty"`
	DNS    []string `json:"dns,omitempty"`
	Pid    int      `json:"pid,omitempty"` // container:PID
	// A user-defined network's (issue 15, 09-full/networks): no way out
	// (Internal), the address asked for (--ip) and the MAC (--mac-address).
	Internal bool   `json:"internal,omitempty"`
	IPRange  string `json:"ipRange,omitempty"`
	// --dns-search, --dns-option (replacing the host's search and options
	// lines) and --add-host (NAME:IP lines added to /etc/hosts).
	DNSSearch  []string `json:"dnsSearch,omitempty"`
	DNSOptions []string `json:"dnsOptions,omitempty"`
	ExtraHosts []string `json:"extraHosts,omitempty"`
	IP         string   `json:"ip,omitempty"`
	MAC        string   `json:"mac,omitempty"`

	// Filled by Prepare, used by Parent in the same process.
	addr *net.IPNet
	held []*os.File // reserved host ports
}

func (*Step) Name() string { return "network" }

// Dir holds berth's network state under a state root: the IPAM's lease
// files and locks. The dot keeps it apart from container ids.
func Dir(stateRoot string) string { return filepath.Join(stateRoot, ".network") }

func (s *Step) ipam(c *spine.Container) (*IPAM, error) {
	subnet, err := ParseSubnet(s.Subnet)
	if err != nil {
		return nil, err
	}
	p := &IPAM{Dir: Dir(c.State), Subnet: subnet, Alive: Alive(c.State)}
	if s.IPRange != "" {
		if _, p.Range, err = net.ParseCIDR(s.IPRange); err != nil {
			return nil, fmt.Errorf("invalid ip range %q: %w", s.IPRange, err)
		}
	}
	return p, nil
}

// Prepare does what needs no child yet. In bridge mode the order puts the
// checks that can fail on bad input (a port in use, an exhausted subnet)
// before the bridge exists, so they leave nothing behind.
func (s *Step) Prepare(c *spine.Container) error {
	// Mounted from the state directory, which is final only now: a later
	// stage's Configure may move it (05-user, without root).
	c.Spec.Mounts = append(c.Spec.Mounts, etcMounts(c.StateDir())...)
	var hosts []byte
	switch s.Mode {
	case ModeBridge:
		if err := s.prepareBridge(c); err != nil {
			return err
		}
		hosts = HostsFile(c.Spec.Hostname, s.addr.IP)
	case ModeHost:
		h, err := os.ReadFile("/etc/hosts")
		if err != nil {
			return fmt.Errorf("read the host's /etc/hosts: %w", err)
		}
		if c.Spec.Hostname != "" {
			h = fmt.Appendf(h, "127.0.1.1\t%s\n", c.Spec.Hostname)
		}
		hosts = h
	case ModeContainer:
		ip, err := firstAddress(s.Pid)
		if err != nil {
			return err
		}
		hosts = HostsFile(c.Spec.Hostname, ip)
	default: // none, or a mode of a later stage
		hosts = HostsFile(c.Spec.Hostname, nil)
	}
	for _, h := range s.ExtraHosts {
		name, ip, _ := strings.Cut(h, ":")
		hosts = fmt.Appendf(hosts, "%s\t%s\n", ip, name)
	}
	return writeEtcFiles(c.StateDir(), c.Spec.Hostname, hosts, s.DNS, s.Mode == ModeHost, s.DNSSearch, s.DNSOptions)
}

func (s *Step) prepareBridge(c *spine.Container) error {
	pool, err := s.ipam(c)
	if err != nil {
		return err
	}
	gw := Gateway(pool.Subnet)
	// Ports on the gateway's address can only be bound once the bridge
	// carries it; all others are checked first.
	for _, p := range s.Ports {
		if p.HostIP != gw.String() {
			if err := s.reserve(p); err != nil {
				return err
			}
		}
	}
	var ip net.IP
	if s.IP != "" {
		ip = net.ParseIP(s.IP).To4()
		err = pool.AllocateAddr(c.ID, ip)
	} else {
		ip, err = pool.Allocate(c.ID)
	}
	if err != nil {
		return err
	}
	s.addr = &net.IPNet{IP: ip, Mask: pool.Subnet.Mask}
	c.Logf("network: leased %s to %s", s.addr, c.ID)

	unlock, err := lockFile(filepath.Join(Dir(c.State), "network.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := ensureBridge(s.Bridge, pool.Subnet); err != nil {
		return err
	}
	if err := ensureNAT(s.Bridge, pool.Subnet, s.Internal); err != nil {
		return err
	}
	for _, p := range s.Ports {
		if p.HostIP == gw.String() {
			if err := s.reserve(p); err != nil {
				return err
			}
		}
	}
	if err := addPortRules(s.Bridge, c.ID, s.Ports, ip); err != nil {
		return err
	}
	for _, p := range s.Ports {
		c.Logf("network: published %s", portComment(c.ID, p, ip))
	}
	return nil
}

func (s *Step) reserve(p Port) error {
	sock, err := reserve(p)
	if err != nil {
		return err
	}
	s.held = append(s.held, sock)
	return nil
}

// Parent wires the container in while it waits at the sync point, so its
// command never runs without its network.
func (s *Step) Parent(c *spine.Container, pid int) error {
	switch s.Mode {
	case ModeBridge:
		subnet, err := ParseSubnet(s.Subnet)
		if err != nil {
			return err
		}
		br, err := bridgeLink(s.Bridge)
		if err != nil {
			return err
		}
		var mac net.HardwareAddr
		if s.MAC != "" {
			if mac, err = net.ParseMAC(s.MAC); err != nil {
				return fmt.Errorf("invalid MAC address %q: %w", s.MAC, err)
			}
		}
		if err := createVeth(br, c.ID, pid, s.addr, Gateway(subnet), mac); err != nil {
			return err
		}
		c.Logf("network: %s on %s <-> eth0 %s in pid %d's namespace, default via %s", VethName(c.ID), s.Bridge, s.addr, pid, Gateway(subnet))
	case ModeContainer:
		c.Logf("network: joins the network namespace of pid %d", s.Pid)
	case ModeHost:
		c.Logf("network: the host's")
	}
	return nil
}

// Child brings lo up when the container has a namespace of its own but no
// bridge (none, or a mode a later stage carries out). It is done from
// inside: a rootless runtime (stage 05) may not enter the namespace from
// the parent, since setns needs CAP_SYS_ADMIN in its own user namespace too.
func (s *Step) Child(c *spine.Container) error {
	switch s.Mode {
	case ModeBridge, ModeHost, ModeContainer:
		return nil
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("look up lo: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	c.Logf("network: only lo, up")
	return nil
}

// Held hands the reserved host ports to whoever outlives a detached
// container's creator (spine.Holder): the port stays taken while it runs.
func (s *Step) Held() []*os.File {
	out := s.held
	s.held = nil
	return out
}

// Cleanup releases what Prepare and Parent made; shared things (bridge,
// table, masquerade rules) stay. It is idempotent and works from the id
// alone, as a later run collecting a killed runtime calls it.
func (s *Step) Cleanup(c *spine.Container) error {
	var errs []error
	for _, h := range s.held {
		errs = append(errs, h.Close())
	}
	s.held = nil
	if s.Mode != ModeBridge {
		return errors.Join(errs...)
	}
	errs = append(errs, deleteVeth(c.ID))
	if _, err := os.Stat(Dir(c.State)); errors.Is(err, os.ErrNotExist) {
		// Prepare stopped before the first lease: no lease, no rule.
		return errors.Join(errs...)
	}
	unlock, err := lockFile(filepath.Join(Dir(c.State), "network.lock"))
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	errs = append(errs, deletePortRules(s.Bridge, c.ID))
	unlock()
	if pool, err := s.ipam(c); err != nil {
		errs = append(errs, err)
	} else {
		errs = append(errs, pool.Release(c.ID))
	}
	return errors.Join(errs...)
}

// Alive tells whether the container id of a state root still runs: its
// runtime holds an exclusive flock on <root>/<id>/lock for as long as it
// lives, or, detached (stage 09), its init does (spine.Running).
func Alive(stateRoot string) func(id string) bool {
	return func(id string) bool {
		return spine.Running(filepath.Join(stateRoot, id))
	}
}
