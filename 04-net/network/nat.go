//go:build linux

package network

import (
	"fmt"
	"net"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// All of the default bridge's packet rewriting lives in one nftables table,
// `ip berth`, so that `nft list table ip berth` shows all of it and deleting
// the table removes all of it (a user-defined network of stage 09 has a
// table of its own, `ip berth-BRIDGE`, built the same way: TableOf). The rules are built as netlink messages by
// github.com/google/nftables (what `nft` itself sends: compare with
// `nft --debug=netlink list table ip berth`); nothing runs iptables.
//
//	table ip berth {
//	  chain prerouting  { type nat hook prerouting priority dstnat   # packets arriving
//	    fib daddr type local tcp dport 8080 dnat to 10.88.0.2:80 comment "container ID: ..." }
//	  chain output      { type nat hook output priority -100         # packets the host sends
//	    fib daddr type local tcp dport 8080 dnat to 10.88.0.2:80 comment "container ID: ..." }
//	  chain postrouting { type nat hook postrouting priority srcnat  # packets leaving
//	    ip saddr 10.88.0.0/16 oifname != "berth0" masquerade      # outbound NAT
//	    oifname "berth0" ip saddr 127.0.0.0/8 masquerade          # published port via 127.0.0.1
//	    oifname "berth0" ip saddr 10.88.0.0/16 ct status dnat masquerade  # hairpin
//	  }
//	  chain forward { type filter hook forward priority filter; policy accept  # packets routed
//	    oifname "berth0" ct state established,related accept  # replies
//	    oifname "berth0" iifname "berth0" accept              # container to container
//	    oifname "berth0" ct status dnat accept                # published ports
//	    oifname "berth0" drop                                 # anything else towards a container
//	  }
//	  chain input { type filter hook input priority filter; policy accept  # packets for the host
//	    iifname "berth0" ip daddr 127.0.0.0/8 ip saddr != 127.0.0.0/8 ct state ! established,related ct status ! dnat drop
//	  }
//	}
//
// Each rule carries a comment (nftables "userdata"): shared rules start
// with "berth:", a container's port rules with "container ID:", which is
// how a later run finds the rules of a killed runtime from its id alone.
const TableName = "berth"

// natTable is one nftables table of berth's with its five chains: the
// default bridge's is `ip berth`; a user-defined network's (issue 15,
// 09-full/networks) is `ip berth-BRIDGE`, so that removing the network
// removes its table and nothing of another's. Rules carry their chain's
// table, so the same rule builders serve every table.
type natTable struct {
	table                   *nftables.Table
	pre, out, post, fwd, in *nftables.Chain
}

// policyAccept: the forward chain filters only what is routed towards a
// bridge and leaves the host's routing between its other interfaces as it
// found it (Docker's FORWARD policy drop would stop that too).
var policyAccept = nftables.ChainPolicyAccept

// TableOf names the nftables table of a bridge's network.
func TableOf(bridge string) string {
	if bridge == "" || bridge == DefaultBridge {
		return TableName
	}
	return TableName + "-" + bridge
}

func natOf(bridge string) *natTable {
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: TableOf(bridge)}
	return &natTable{
		table: t,
		pre: &nftables.Chain{Name: "prerouting", Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest},
		out: &nftables.Chain{Name: "output", Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest},
		post: &nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource},
		fwd: &nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &policyAccept},
		in: &nftables.Chain{Name: "input", Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &policyAccept},
	}
}

func (n *natTable) chains() []*nftables.Chain {
	return []*nftables.Chain{n.pre, n.out, n.post, n.fwd, n.in}
}

// ensureNAT creates the table, its chains, the shared postrouting rules
// and the forward filter if they are missing, and drops shared rules left
// from another subnet. Most runs find everything in place: three dumps and
// no transaction, since each nftables commit costs milliseconds.
//
// An internal network (internal true) gets no outbound NAT, and its
// forward filter drops what its containers send anywhere but the bridge.
func ensureNAT(bridge string, subnet *net.IPNet, internal bool) error {
	n := natOf(bridge)
	table, postChain, fwdChain := n.table, n.post, n.fwd
	conn, err := newConn()
	if err != nil {
		return err
	}
	var want []*nftables.Rule
	if !internal {
		want = append(want, rule(postChain, "berth: outbound NAT for "+subnet.String(),
			saddrIn(subnet), ifname(expr.CmpOpNeq, bridge), &expr.Masq{}))
	}
	want = append(want,
		rule(postChain, "berth: published ports reached from the host's loopback",
			ifname(expr.CmpOpEq, bridge), saddrIn(loopbackNet), &expr.Masq{}),
		rule(postChain, "berth: hairpin, a container reaching a published port",
			ifname(expr.CmpOpEq, bridge), saddrIn(subnet), ctDNAT(), &expr.Masq{}),
	)
	existing, err := existingChains(conn, table.Name)
	if err != nil {
		return err
	}
	changed := false
	if len(existing) == 0 {
		conn.AddTable(table)
	}
	for _, ch := range n.chains() {
		if !existing[ch.Name] {
			conn.AddChain(ch)
			changed = true
		}
	}
	var have []*nftables.Rule
	if existing[postChain.Name] {
		if have, err = conn.GetRules(table, postChain); err != nil {
			return fmt.Errorf("nftables: list chain postrouting: %w", err)
		}
	}

	haveComment := map[string]bool{}
	for _, r := range have {
		c := comment(r)
		if !strings.HasPrefix(c, "berth:") {
			continue
		}
		stale := true
		for _, w := range want {
			if comment(w) == c {
				stale = false
			}
		}
		if stale {
			if err := conn.DelRule(r); err != nil {
				return fmt.Errorf("nftables: delete stale rule %q: %w", c, err)
			}
			changed = true
		}
		haveComment[c] = true
	}
	for _, w := range want {
		if !haveComment[comment(w)] {
			conn.AddRule(w)
			changed = true
		}
	}

	// The filters' rules work in order (the drop comes last), so unless a
	// chain holds exactly them it is emptied and filled again.
	for _, f := range []struct {
		chain *nftables.Chain
		rules []*nftables.Rule
	}{
		{fwdChain, forwardRules(fwdChain, bridge, internal)},
		{n.in, inputRules(n.in, bridge)},
	} {
		var have []*nftables.Rule
		if existing[f.chain.Name] {
			if have, err = conn.GetRules(table, f.chain); err != nil {
				return fmt.Errorf("nftables: list chain %s: %w", f.chain.Name, err)
			}
		}
		if sameComments(have, f.rules) {
			continue
		}
		if existing[f.chain.Name] {
			conn.FlushChain(f.chain)
		}
		for _, r := range f.rules {
			conn.AddRule(r)
		}
		changed = true
	}

	if !changed {
		return nil
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("nftables: set up table ip %s: %w", table.Name, err)
	}
	return nil
}

// forwardRules filter what the host routes towards the bridge, as Docker's
// FORWARD chain does for docker0: replies to connections already allowed,
// traffic between containers, and connections a published port's DNAT
// sent there. Everything else is dropped, so that a machine routing the
// container subnet via this host cannot reach a port nobody published.
//
// The same rules on every bridge isolate the networks from each other, as
// Docker's DOCKER-ISOLATION chains do: a connection from one bridge to
// another is "anything else" for the second and dropped. An internal
// network's first rule drops all it would route out.
func forwardRules(fwdChain *nftables.Chain, bridge string, internal bool) []*nftables.Rule {
	toBridge := ifname(expr.CmpOpEq, bridge)
	var out []*nftables.Rule
	if internal {
		out = append(out, rule(fwdChain, "berth: an internal network has no way out",
			iifname(bridge), ifname(expr.CmpOpNeq, bridge), &expr.Verdict{Kind: expr.VerdictDrop}))
	}
	return append(out,
		rule(fwdChain, "berth: replies to connections already allowed",
			toBridge, ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), accept()),
		rule(fwdChain, "berth: container to container",
			toBridge, iifname(bridge), accept()),
		rule(fwdChain, "berth: published ports",
			toBridge, ctDNAT(), accept()),
		rule(fwdChain, "berth: nothing else reaches a container",
			toBridge, &expr.Verdict{Kind: expr.VerdictDrop}),
	)
}

// inputRules keep the containers away from the host's loopback. The bridge
// has route_localnet on (ensureBridge: published ports reached through
// 127.0.0.1 need it), and with it the kernel no longer drops, as martians,
// packets to 127.0.0.0/8 that arrive on the bridge: a container that can
// write raw frames (CAP_NET_RAW, in the default set) sends one to the
// gateway's MAC with destination 127.0.0.1 and reaches every service the
// host bound to loopback only (CVE-2020-8558, which kube-proxy's
// route_localnet opened the same way). The rule is kube-proxy's fix: drop
// what comes to 127.0.0.0/8 from elsewhere unless conntrack knows it. The
// replies of a published port reached through 127.0.0.1 pass: they are
// addressed to 127.0.0.1 again (conntrack undoes the masquerade before
// this hook) and belong to an established connection.
func inputRules(inChain *nftables.Chain, bridge string) []*nftables.Rule {
	return []*nftables.Rule{
		rule(inChain, "berth: no container reaches the host's loopback (CVE-2020-8558)",
			iifname(bridge), daddrIn(loopbackNet), saddrNotIn(loopbackNet),
			ctStateNot(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), ctNotDNAT(),
			&expr.Verdict{Kind: expr.VerdictDrop}),
	}
}

func sameComments(have, want []*nftables.Rule) bool {
	if len(have) != len(want) {
		return false
	}
	for i := range have {
		if comment(have[i]) != comment(want[i]) {
			return false
		}
	}
	return true
}

// existingChains names the chains of berth's table that exist (none when
// the table does not).
func existingChains(conn *nftables.Conn, table string) (map[string]bool, error) {
	all, err := conn.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("nftables: list chains: %w", err)
	}
	out := map[string]bool{}
	for _, c := range all {
		if c.Table.Name == table {
			out[c.Name] = true
		}
	}
	return out, nil
}

var loopbackNet = &net.IPNet{IP: net.IPv4(127, 0, 0, 0).To4(), Mask: net.CIDRMask(8, 32)}

// addPortRules adds, for each published port, the same DNAT rule to
// prerouting (packets from elsewhere, containers included) and to output
// (packets the host itself sends, to 127.0.0.1 or any of its addresses).
func addPortRules(bridge, id string, ports []Port, ctrIP net.IP) error {
	if len(ports) == 0 {
		return nil
	}
	n := natOf(bridge)
	conn, err := newConn()
	if err != nil {
		return err
	}
	for _, p := range ports {
		for _, ch := range []*nftables.Chain{n.pre, n.out} {
			conn.AddRule(rule(ch, portComment(id, p, ctrIP), dnatExprs(p, ctrIP)))
		}
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("nftables: add port rules: %w", err)
	}
	return nil
}

func portComment(id string, p Port, ctrIP net.IP) string {
	host := p.HostIP
	if host == "" {
		host = "*"
	}
	return fmt.Sprintf("container %s: %s:%d -> %s:%d/%s", id, host, p.HostPort, ctrIP, p.CtrPort, p.Proto)
}

// deletePortRules removes every rule tagged with the container's id. A
// missing table means there is nothing to remove.
func deletePortRules(bridge, id string) error {
	nt := natOf(bridge)
	conn, err := newConn()
	if err != nil {
		return err
	}
	if ok, err := tableExists(conn, nt.table.Name); err != nil || !ok {
		return err
	}
	prefix := "container " + id + ":"
	n := 0
	for _, ch := range []*nftables.Chain{nt.pre, nt.out} {
		rules, err := conn.GetRules(nt.table, ch)
		if err != nil {
			return fmt.Errorf("nftables: list chain %s: %w", ch.Name, err)
		}
		for _, r := range rules {
			if strings.HasPrefix(comment(r), prefix) {
				if err := conn.DelRule(r); err != nil {
					return fmt.Errorf("nftables: delete rule %q: %w", comment(r), err)
				}
				n++
			}
		}
	}
	if n == 0 {
		return nil
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("nftables: delete port rules of %s: %w", id, err)
	}
	return nil
}

// deleteNAT removes the bridge's table and everything in it.
func deleteNAT(bridge string) error {
	n := natOf(bridge)
	conn, err := newConn()
	if err != nil {
		return err
	}
	if ok, err := tableExists(conn, n.table.Name); err != nil || !ok {
		return err
	}
	conn.DelTable(n.table)
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("nftables: delete table ip %s: %w", n.table.Name, err)
	}
	return nil
}

func newConn() (*nftables.Conn, error) {
	conn, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return conn, nil
}

func tableExists(conn *nftables.Conn, name string) (bool, error) {
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return false, fmt.Errorf("nftables: list tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == name {
			return true, nil
		}
	}
	return false, nil
}
