//go:build linux

package network

// The rules' pieces: each function builds the netlink expressions of one
// phrase of nft's language, written above it as `nft list` shows it.

import (
	"encoding/binary"
	"net"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

func rule(ch *nftables.Chain, text string, exprs ...any) *nftables.Rule {
	var flat []expr.Any
	for _, e := range exprs {
		switch v := e.(type) {
		case []expr.Any:
			flat = append(flat, v...)
		case expr.Any:
			flat = append(flat, v)
		}
	}
	return &nftables.Rule{
		Table:    ch.Table,
		Chain:    ch,
		Exprs:    flat,
		UserData: userdata.AppendString(nil, userdata.TypeComment, text),
	}
}

func comment(r *nftables.Rule) string {
	s, _ := userdata.GetString(r.UserData, userdata.TypeComment)
	return s
}

// ip saddr NET
func saddrIn(n *net.IPNet) []expr.Any { return addrIn(12, n) }

// ip saddr != NET
func saddrNotIn(n *net.IPNet) []expr.Any { return addrCmp(12, expr.CmpOpNeq, n) }

// ip daddr NET
func daddrIn(n *net.IPNet) []expr.Any { return addrIn(16, n) }

func addrIn(offset uint32, n *net.IPNet) []expr.Any { return addrCmp(offset, expr.CmpOpEq, n) }

func addrCmp(offset uint32, op expr.CmpOp, n *net.IPNet) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte(n.Mask), Xor: make([]byte, 4)},
		&expr.Cmp{Op: op, Register: 1, Data: n.IP.To4().Mask(n.Mask)},
	}
}

// oifname ==/!= NAME (interface names compare as 16 NUL-padded bytes)
func ifname(op expr.CmpOp, name string) []expr.Any {
	return ifnameKey(expr.MetaKeyOIFNAME, op, name)
}

// iifname NAME
func iifname(name string) []expr.Any { return ifnameKey(expr.MetaKeyIIFNAME, expr.CmpOpEq, name) }

func ifnameKey(key expr.MetaKey, op expr.CmpOp, name string) []expr.Any {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: b},
	}
}

// ct state STATES: any of the conntrack state bits
func ctState(bits uint32) []expr.Any { return ctBits(expr.CtKeySTATE, bits, expr.CmpOpNeq) }

// ct state != STATES: none of them
func ctStateNot(bits uint32) []expr.Any { return ctBits(expr.CtKeySTATE, bits, expr.CmpOpEq) }

// ct KEY & BITS OP 0
func ctBits(key expr.CtKey, bits uint32, op expr.CmpOp) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: key},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: op, Register: 1, Data: make([]byte, 4)},
	}
}

func accept() *expr.Verdict { return &expr.Verdict{Kind: expr.VerdictAccept} }

// ipsDstNAT is IPS_DST_NAT of linux/netfilter/nf_conntrack_common.h.
const ipsDstNAT = 1 << 5

// ct status dnat: the connection was destination-NATed (a published port)
func ctDNAT() []expr.Any { return ctBits(expr.CtKeySTATUS, ipsDstNAT, expr.CmpOpNeq) }

// ct status != dnat
func ctNotDNAT() []expr.Any { return ctBits(expr.CtKeySTATUS, ipsDstNAT, expr.CmpOpEq) }

// [ip daddr HOSTIP | fib daddr type local] PROTO dport HOSTPORT dnat to CTRIP:CTRPORT
func dnatExprs(p Port, ctrIP net.IP) []expr.Any {
	var e []expr.Any
	if p.HostIP != "" {
		e = addrIn(16, &net.IPNet{IP: net.ParseIP(p.HostIP).To4(), Mask: net.CIDRMask(32, 32)})
	} else {
		e = []expr.Any{
			&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
		}
	}
	proto := byte(unix.IPPROTO_TCP)
	if p.Proto == "udp" {
		proto = unix.IPPROTO_UDP
	}
	return append(e,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: be16(p.HostPort)},
		&expr.Immediate{Register: 1, Data: ctrIP.To4()},
		&expr.Immediate{Register: 2, Data: be16(p.CtrPort)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	)
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
