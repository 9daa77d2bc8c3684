//go:build linux

package network

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// VethName is the host end of a container's veth pair. It is derived
// from the container id alone, so that a later run can find and remove the
// link of a runtime that was killed. Interface names have at most 15
// characters: a short id is used as it is (bth + the 12 hex digits of a
// random id), a longer one is hashed.
func VethName(id string) string {
	if len(id) <= 12 {
		return "bth" + id
	}
	sum := sha256.Sum256([]byte(id))
	return "bth" + hex.EncodeToString(sum[:])[:12]
}

// vethAlias tags the host end with the container's id: `ip link` shows it,
// and cleanup removes a link only if the tag is berth's.
func vethAlias(id string) string { return "berth:" + id }

// macFor derives the container's MAC address from its IPv4 address, as
// Docker does: an address handed to a new container then comes with the
// same MAC, so neighbours' ARP caches are never stale.
func macFor(ip net.IP) net.HardwareAddr {
	ip4 := ip.To4()
	return net.HardwareAddr{0x02, 0x42, ip4[0], ip4[1], ip4[2], ip4[3]}
}

// createVeth makes the pair with its host end on the bridge and its other
// end created directly inside the container's network namespace as eth0;
// then, through a netlink handle opened in that namespace, it gives eth0
// its address, brings lo and eth0 up and adds the default route. The child
// is still waiting at the sync point, so all of it is done from here.
//
// mac is eth0's address; nil derives it from the IPv4 address (macFor).
func createVeth(bridge netlink.Link, id string, pid int, addr *net.IPNet, gw net.IP, mac net.HardwareAddr) error {
	if mac == nil {
		mac = macFor(addr.IP)
	}
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return fmt.Errorf("open network namespace of pid %d: %w", pid, err)
	}
	defer ns.Close()

	name := VethName(id)
	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{
			Name:        name,
			MTU:         bridge.Attrs().MTU,
			MasterIndex: bridge.Attrs().Index,
		},
		PeerName:         "eth0",
		PeerHardwareAddr: mac,
		PeerNamespace:    netlink.NsFd(ns),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth pair %s <-> eth0 (pid %d): %w", name, pid, err)
	}
	host, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("look up %s: %w", name, err)
	}
	// The kernel ignores an alias given at creation; set it now.
	if err := netlink.LinkSetAlias(host, vethAlias(id)); err != nil {
		return fmt.Errorf("set alias of %s: %w", name, err)
	}
	// Hairpin mode lets the bridge send a frame back out of the port it
	// came in by: without it, a container cannot reach its own published
	// port through the gateway (the DNATed packet goes back to it).
	if err := netlink.LinkSetHairpin(host, true); err != nil {
		return fmt.Errorf("set hairpin mode on %s: %w", name, err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}

	// Only rtnetlink: by default the handle would also open xfrm and
	// netfilter sockets, which a kernel without those modules refuses.
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink handle in the namespace of pid %d: %w", pid, err)
	}
	defer h.Close()
	if err := loUp(h); err != nil {
		return err
	}
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("look up eth0 in the container: %w", err)
	}
	if err := h.AddrAdd(eth0, &netlink.Addr{IPNet: addr}); err != nil {
		return fmt.Errorf("add %s to the container's eth0: %w", addr, err)
	}
	if err := h.LinkSetUp(eth0); err != nil {
		return fmt.Errorf("set the container's eth0 up: %w", err)
	}
	if err := h.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: gw}); err != nil {
		return fmt.Errorf("add default route via %s in the container: %w", gw, err)
	}
	return nil
}

func loUp(h *netlink.Handle) error {
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("look up lo in the container: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up in the container: %w", err)
	}
	return nil
}

// deleteVeth removes the host end of id's pair, which takes the other end
// with it. The link is often gone already: when the container's last
// process exits its namespace is destroyed, and the pair with it.
func deleteVeth(id string) error {
	name := VethName(id)
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("look up %s: %w", name, err)
	}
	// The name is berth's; the alias, once set, must be this container's.
	if a := link.Attrs().Alias; a != "" && a != vethAlias(id) {
		return fmt.Errorf("%s is not the veth of container %s (alias %q): not removing it", name, id, link.Attrs().Alias)
	}
	if err := netlink.LinkDel(link); err != nil {
		if errors.Is(err, unix.ENODEV) {
			return nil // its namespace went away meanwhile
		}
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// firstAddress is the first global IPv4 address in pid's network
// namespace: what a container joining it (container:PID) puts next to its
// name in /etc/hosts. Nil if it has none.
func firstAddress(pid int) (net.IP, error) {
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return nil, fmt.Errorf("open network namespace of pid %d: %w", pid, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in the namespace of pid %d: %w", pid, err)
	}
	defer h.Close()
	addrs, err := h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses in the namespace of pid %d: %w", pid, err)
	}
	for _, a := range addrs {
		if a.IP.IsGlobalUnicast() {
			return a.IP, nil
		}
	}
	return nil, nil
}
