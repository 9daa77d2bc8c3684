//go:build linux

package network

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A container needs three small files that name it and tell it where DNS
// is: /etc/hosts, /etc/hostname and /etc/resolv.conf. berth writes them in
// the container's state directory and bind-mounts them over the rootfs's
// (stage 03 applies every bind mount of c.Spec.Mounts before pivot_root),
// as Docker does: the rootfs directory itself is never written, so one
// rootfs can serve many containers, each with its own files.
var etcFiles = []string{"hosts", "hostname", "resolv.conf"}

// etcMounts are the bind mounts of the three files.
func etcMounts(stateDir string) []specs.Mount {
	var m []specs.Mount
	for _, f := range etcFiles {
		m = append(m, specs.Mount{
			Destination: "/etc/" + f,
			Source:      filepath.Join(stateDir, f),
			Type:        "bind",
			Options:     []string{"rbind"},
		})
	}
	return m
}

// fallbackDNS is used, as Docker does, when the host's resolv.conf names
// only resolvers on its own loopback (systemd-resolved's 127.0.0.53, a
// local dnsmasq), which a container in its own network namespace cannot
// reach.
var fallbackDNS = []string{"8.8.8.8", "8.8.4.4"}

// HostsFile is the container's /etc/hosts: localhost, and its hostname on
// its address (on 127.0.1.1 when it has none, as Debian does, so that its
// own name still resolves).
func HostsFile(hostname string, ip net.IP) []byte {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
	if hostname != "" {
		addr := "127.0.1.1"
		if ip != nil {
			addr = ip.String()
		}
		fmt.Fprintf(&b, "%s\t%s\n", addr, hostname)
	}
	return b.Bytes()
}

// ResolvConf is the container's /etc/resolv.conf: the host's, with its
// nameservers replaced by dns when given; unless keepLoopback (host
// mode), nameservers on 127.0.0.0/8 or ::1 are dropped, and if none is left
// the fallback is used.
func ResolvConf(host []byte, dns []string, keepLoopback bool) []byte {
	var out bytes.Buffer
	var servers []string
	for _, line := range strings.Split(string(host), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			ip := net.ParseIP(f[1])
			if ip != nil && ip.IsLoopback() && !keepLoopback {
				continue
			}
			servers = append(servers, f[1])
			continue
		}
		if strings.TrimSpace(line) != "" {
			out.WriteString(line + "\n")
		}
	}
	switch {
	case len(dns) > 0:
		servers = dns
	case len(servers) == 0:
		out.WriteString("# the host's resolvers are on its loopback, out of the container's reach\n")
		servers = fallbackDNS
	}
	for _, s := range servers {
		fmt.Fprintf(&out, "nameserver %s\n", s)
	}
	return out.Bytes()
}

// writeEtcFiles writes the three files into the container's state
// directory, where etcMounts points.
//
// search and options, when given, replace the host's search (or domain)
// and options lines, as docker run's --dns-search and --dns-option do.
func writeEtcFiles(dir, hostname string, hosts []byte, dns []string, keepLoopback bool, search, options []string) error {
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("read the host's /etc/resolv.conf: %w", err)
	}
	files := map[string][]byte{
		"hosts":       hosts,
		"hostname":    []byte(hostname + "\n"),
		"resolv.conf": replaceLines(ResolvConf(host, dns, keepLoopback), search, options),
	}
	for _, name := range etcFiles {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, files[name], 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	return nil
}

// replaceLines puts search and options lines in place of the file's own.
func replaceLines(conf []byte, search, options []string) []byte {
	if len(search) == 0 && len(options) == 0 {
		return conf
	}
	var out bytes.Buffer
	for _, line := range strings.Split(strings.TrimSuffix(string(conf), "\n"), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && (len(search) > 0 && (f[0] == "search" || f[0] == "domain") || len(options) > 0 && f[0] == "options") {
			continue
		}
		out.WriteString(line + "\n")
	}
	if len(search) > 0 {
		fmt.Fprintf(&out, "search %s\n", strings.Join(search, " "))
	}
	if len(options) > 0 {
		fmt.Fprintf(&out, "options %s\n", strings.Join(options, " "))
	}
	return out.Bytes()
}
