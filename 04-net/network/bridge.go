//go:build linux

package network

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// DefaultBridge and DefaultSubnet are the network every bridge-mode
// container joins unless told otherwise (Docker's are docker0 and
// 172.17.0.0/16; podman's are podman0 and 10.88.0.0/16).
const (
	DefaultBridge = "berth0"
	DefaultSubnet = "10.88.0.0/16"
)

// The bridge remembers, in its alias, whether IPv4 forwarding was off
// before berth turned it on, so that `cleanup` can put it back: the alias
// lives exactly as long as the bridge, in exactly the network namespace
// whose setting it describes.
const forwardAliasPrefix = "berth: ip_forward was "

const ipForward = "/proc/sys/net/ipv4/ip_forward"

// ensureBridge returns the bridge, creating it on first use with the
// subnet's first address (the containers' gateway), up, with forwarding on.
// An existing bridge must carry the same subnet.
func ensureBridge(name string, subnet *net.IPNet) (netlink.Link, error) {
	gw := &net.IPNet{IP: Gateway(subnet), Mask: subnet.Mask}
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return nil, fmt.Errorf("look up bridge %s: %w", name, err)
		}
		if err := checkOverlap(subnet); err != nil {
			return nil, err
		}
		was, err := os.ReadFile(ipForward)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", ipForward, err)
		}
		// A bridge without an address of its own takes the lowest MAC of
		// its ports, and changes it when that port goes: the containers'
		// ARP entries for the gateway then point nowhere, and the gateway
		// (its name server, its way out) is unreachable until they age
		// out. A fixed address, derived from the gateway's IP as a
		// container's is, never changes.
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: macFor(gw.IP)}}
		if err := netlink.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("create bridge %s: %w", name, err)
		}
		if link, err = netlink.LinkByName(name); err != nil {
			return nil, fmt.Errorf("look up bridge %s: %w", name, err)
		}
		if link.Attrs().Alias == "" {
			alias := forwardAliasPrefix + strings.TrimSpace(string(was))
			if err := netlink.LinkSetAlias(link, alias); err != nil {
				return nil, fmt.Errorf("set alias of %s: %w", name, err)
			}
		}
	}
	if link.Type() != "bridge" {
		return nil, fmt.Errorf("%s exists and is a %s, not a bridge: remove it or run berth where it is not", name, link.Type())
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", name, err)
	}
	has := false
	for _, a := range addrs {
		if a.IPNet.String() == gw.String() {
			has = true
			continue
		}
		return nil, fmt.Errorf("bridge %s has address %s, not %s: use the same --subnet as its running containers, or stop them and run cleanup", name, a.IPNet, gw)
	}
	if !has {
		if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: gw}); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("add %s to %s: %w", gw, name, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("set %s up: %w", name, err)
	}
	// Published ports reached from the host's 127.0.0.1 are DNATed to a
	// container and leave through the bridge with a loopback source; the
	// kernel drops such packets as martians unless route_localnet allows
	// them (a masquerade rule then gives them the gateway's address).
	if err := writeSysctl(fmt.Sprintf("/proc/sys/net/ipv4/conf/%s/route_localnet", name), "1"); err != nil {
		return nil, err
	}
	// Routing between the bridge and other interfaces (outbound NAT, a
	// published port reached from outside) needs forwarding.
	if err := writeSysctl(ipForward, "1"); err != nil {
		return nil, err
	}
	return link, nil
}

// checkOverlap refuses a subnet that the host already reaches some other
// way: a container address would shadow (or be shadowed by) a real network.
func checkOverlap(subnet *net.IPNet) error {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		// The default route (nil, or 0.0.0.0/0 in newer netlink) covers
		// every address; it is where container traffic is masqueraded
		// to, not a network the subnet could shadow.
		if r.Dst == nil || isDefault(r.Dst) || !overlaps(subnet, r.Dst) {
			continue
		}
		dev := ""
		if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
			dev = " dev " + l.Attrs().Name
		}
		return fmt.Errorf("subnet %s overlaps the host's route to %s%s: choose another --subnet", subnet, r.Dst, dev)
	}
	return nil
}

func overlaps(a, b *net.IPNet) bool { return a.Contains(b.IP) || b.Contains(a.IP) }

// deleteBridge removes the bridge, and turns forwarding back off if it was
// off before berth made the bridge. A missing bridge is not an error.
func deleteBridge(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("look up bridge %s: %w", name, err)
	}
	if link.Type() != "bridge" {
		return fmt.Errorf("%s is a %s, not berth's bridge: not removing it", name, link.Type())
	}
	if err := netlink.LinkDel(link); err != nil {
		return fmt.Errorf("delete bridge %s: %w", name, err)
	}
	if was, ok := strings.CutPrefix(link.Attrs().Alias, forwardAliasPrefix); ok && was == "0" {
		// With user-defined networks (stage 09) several bridges live at
		// once, and only the first found forwarding off. While another
		// berth bridge remains, forwarding stays on and that bridge
		// inherits the memory of how it was.
		links, err := netlink.LinkList()
		if err != nil {
			return fmt.Errorf("list links: %w", err)
		}
		for _, l := range links {
			if l.Type() == "bridge" && strings.HasPrefix(l.Attrs().Alias, forwardAliasPrefix) {
				if err := netlink.LinkSetAlias(l, forwardAliasPrefix+"0"); err != nil {
					return fmt.Errorf("set alias of %s: %w", l.Attrs().Name, err)
				}
				return nil
			}
		}
		if err := writeSysctl(ipForward, "0"); err != nil {
			return err
		}
	}
	return nil
}

// CheckOverlap refuses a subnet the host already routes some other way
// (a user-defined network's, checked when it is created).
func CheckOverlap(subnet *net.IPNet) error { return checkOverlap(subnet) }

func writeSysctl(path, value string) error {
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("write %s to %s: %w", value, path, err)
	}
	return nil
}

// bridgeLink finds the bridge Prepare made sure of.
func bridgeLink(name string) (netlink.Link, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("look up bridge %s: %w", name, err)
	}
	return link, nil
}

func isDefault(n *net.IPNet) bool {
	ones, _ := n.Mask.Size()
	return ones == 0
}
