//go:build linux

package network

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

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
// An existing bridge must be one berth made (its alias says so) and carry
// the same subnet: a bridge of the host's that happens to have the name
// (`network create -o com.docker.network.bridge.name=br0` on a host whose
// br0 carries its LAN) is never taken over, nor deleted with the network.
func ensureBridge(name string, subnet *net.IPNet) (netlink.Link, error) {
	gw := &net.IPNet{IP: Gateway(subnet), Mask: subnet.Mask}
	link, err := netlink.LinkByName(name)
	if err == nil {
		if err := checkOurs(link); err != nil {
			return nil, err
		}
	} else {
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
		err = netlink.LinkAdd(br)
		switch {
		case errors.Is(err, unix.EEXIST):
			// Made meanwhile by another than a berth of this state
			// root (which holds network.lock): a berth of another
			// root marks it in a moment; anyone else's is refused.
			if link, err = awaitOurs(name); err != nil {
				return nil, err
			}
		case err != nil:
			return nil, fmt.Errorf("create bridge %s: %w", name, err)
		default:
			if link, err = netlink.LinkByName(name); err != nil {
				return nil, fmt.Errorf("look up bridge %s: %w", name, err)
			}
			// The mark of a bridge berth made (checkOurs), and its
			// memory of the forwarding setting (deleteBridge). The
			// kernel takes no alias with the link's creation.
			alias := forwardAliasPrefix + strings.TrimSpace(string(was))
			if err := netlink.LinkSetAlias(link, alias); err != nil {
				_ = netlink.LinkDel(link)
				return nil, fmt.Errorf("set alias of %s: %w", name, err)
			}
		}
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

// checkOurs refuses a link berth did not make: berth's bridges carry the
// alias ensureBridge gives them.
func checkOurs(link netlink.Link) error {
	name := link.Attrs().Name
	if link.Type() != "bridge" {
		return fmt.Errorf("%s exists and is a %s, not a bridge: remove it or run berth where it is not", name, link.Type())
	}
	if !strings.HasPrefix(link.Attrs().Alias, forwardAliasPrefix) {
		return fmt.Errorf("bridge %s exists and is not berth's: berth uses only bridges it made (choose another bridge name, or remove it)", name)
	}
	return nil
}

// awaitOurs waits a second at most for the bridge another berth just made
// to carry berth's mark.
func awaitOurs(name string) (netlink.Link, error) {
	deadline := time.Now().Add(time.Second)
	for {
		link, err := netlink.LinkByName(name)
		if err != nil {
			return nil, fmt.Errorf("look up bridge %s: %w", name, err)
		}
		err = checkOurs(link)
		if err == nil || time.Now().After(deadline) {
			return link, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deleteBridge removes the bridge, and turns forwarding back off if it was
// off before berth made the bridge. A missing bridge is not an error, and
// a link of that name that berth did not make is left alone (removed
// false).
func deleteBridge(name string) (removed bool, err error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return false, nil
		}
		return false, fmt.Errorf("look up bridge %s: %w", name, err)
	}
	if checkOurs(link) != nil {
		return false, nil
	}
	if err := netlink.LinkDel(link); err != nil {
		return false, fmt.Errorf("delete bridge %s: %w", name, err)
	}
	return true, restoreForwarding(link)
}

// restoreForwarding turns forwarding back off after the deleted bridge
// link if berth turned it on, unless another berth bridge remains.
func restoreForwarding(link netlink.Link) error {
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

// CheckBridgeName refuses, for a new user-defined network, a bridge name
// the host already has a link of (berth would otherwise make it its own
// and delete it with the network; Docker, given an existing bridge, uses
// it) or that is the default bridge's.
func CheckBridgeName(name string) error {
	if name == DefaultBridge {
		return fmt.Errorf("bridge name %s is the default network's", name)
	}
	_, err := netlink.LinkByName(name)
	var nf netlink.LinkNotFoundError
	switch {
	case err == nil:
		return fmt.Errorf("bridge name %s is taken: the host has a link of that name, and berth uses only bridges it makes", name)
	case errors.As(err, &nf):
		return nil
	default:
		return fmt.Errorf("look up link %s: %w", name, err)
	}
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
