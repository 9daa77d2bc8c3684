// Command udpecho answers each UDP datagram on :7 with "echo " and the
// datagram: the container of TestPublishUDP (busybox has no UDP server).
// The tests build it (in the VM, vmtest passes it prebuilt as
// $BERTH_UDPECHO).
package main

import "net"

func main() {
	c, err := net.ListenPacket("udp4", ":7")
	if err != nil {
		panic(err)
	}
	b := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(b)
		if err == nil {
			_, _ = c.WriteTo(append([]byte("echo "), b[:n]...), from)
		}
	}
}
