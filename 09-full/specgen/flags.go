//go:build linux

package specgen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	"golang.org/x/sys/unix"

	"berth/01-uts/spine"
	"berth/04-net/network"
	"berth/05-user/userns"
	"berth/08-image/image"
	"berth/09-full/engine"
	"berth/09-full/logfile"
	"berth/09-full/networks"
	"berth/09-full/store"
)

// networkFlags reads --network, -p and --dns: stage 04's modes (05's
// slirp4netns without root), container:NAME_OR_ID by a container's name,
// or a user-defined network of the data root (09-full/networks) with
// --network-alias, --ip and --mac-address.
func networkFlags(o *Options, set *engine.Settings, rootless bool, dataRoot string) error {
	mode := o.Network
	if mode == "" || mode == "default" {
		mode = network.ModeBridge
		if rootless {
			// As podman: a rootless container reaches out through
			// slirp4netns, where it is installed and may open /dev/net/tun
			// (some hosts keep it 0600); else it has lo alone.
			mode = network.ModeNone
			if _, err := userns.SlirpPath(); err == nil && unix.Access("/dev/net/tun", unix.R_OK|unix.W_OK) == nil {
				mode = engine.ModeSlirp
			}
		}
	}
	name, arg, _ := strings.Cut(mode, ":")
	n := engine.Network{Mode: name, DNS: o.DNS}
	switch name {
	case network.ModeBridge, network.ModeNone, network.ModeHost, engine.ModeSlirp:
		if arg != "" {
			return fmt.Errorf("invalid --network %q", mode)
		}
	case network.ModeContainer:
		if arg == "" {
			return fmt.Errorf("invalid --network %q: want container:NAME_OR_ID", mode)
		}
		n.Container = arg
	default:
		nw, err := networks.Open(dataRoot).Get(mode)
		if err != nil {
			return fmt.Errorf("network %s not found", mode)
		}
		if nw.Predefined() {
			return fmt.Errorf("invalid --network %q", mode)
		}
		n.Mode, n.Name = network.ModeBridge, nw.Name
	}
	if err := endpointFlags(o, &n, dataRoot); err != nil {
		return err
	}
	if rootless && (n.Mode == network.ModeBridge || n.Mode == network.ModeContainer) {
		return fmt.Errorf("--network %s needs root (it changes the host's network); without root use none or slirp4netns", mode)
	}
	if (len(o.Publish) > 0 || o.PublishAll) && n.Mode != network.ModeBridge {
		return fmt.Errorf("-p publishes ports through the bridge: it needs --network bridge, not %s", mode)
	}
	ports, err := publish(o.Publish, o.PublishAll, set.ExposedPorts)
	if err != nil {
		return err
	}
	n.Ports = ports
	for _, d := range o.DNS {
		if err := checkIP(d); err != nil {
			return err
		}
	}
	set.Network = n
	return nil
}

// endpointFlags checks --network-alias, --ip and --mac-address: Docker
// takes them only on a user-defined network.
func endpointFlags(o *Options, n *engine.Network, dataRoot string) error {
	if n.Name == "" && (len(o.NetworkAliases) > 0 || o.IP != "") {
		return errors.New("user specified IP address and network-scoped aliases are supported only on user-defined networks")
	}
	if o.MAC != "" {
		if n.Mode != network.ModeBridge {
			return fmt.Errorf("--mac-address needs a bridge network, not %s", n.Mode)
		}
		mac, err := net.ParseMAC(o.MAC)
		if err != nil || len(mac) != 6 || mac[0]&1 == 1 {
			return fmt.Errorf("invalid --mac-address %q: want a unicast Ethernet address such as 92:d0:c6:0a:29:33", o.MAC)
		}
		n.MAC = mac.String()
	}
	if o.IP != "" {
		ip := net.ParseIP(o.IP)
		if ip == nil || ip.To4() == nil {
			return fmt.Errorf("invalid --ip %q: want an IPv4 address", o.IP)
		}
		nw, err := networks.Open(dataRoot).Get(n.Name)
		if err != nil {
			return err
		}
		sn, err := nw.SubnetNet()
		if err != nil {
			return err
		}
		if !sn.Contains(ip) {
			return fmt.Errorf("invalid --ip %s: not in network %s's subnet %s", ip, nw.Name, sn)
		}
		n.IP = ip.To4().String()
	}
	for _, a := range o.NetworkAliases {
		if !validAlias(a) {
			return fmt.Errorf("invalid --network-alias %q: want a DNS name", a)
		}
	}
	n.Aliases = o.NetworkAliases
	for _, d := range o.DNSSearch {
		if d != "." && !validAlias(strings.TrimSuffix(d, ".")) {
			return fmt.Errorf("invalid --dns-search %q: want a domain name", d)
		}
	}
	for _, opt := range o.DNSOptions {
		if opt == "" || strings.ContainsAny(opt, " \t\n") {
			return fmt.Errorf("invalid --dns-option %q", opt)
		}
	}
	for _, h := range o.AddHosts {
		name, ip, ok := strings.Cut(h, ":")
		if !ok || !validAlias(name) || net.ParseIP(ip) == nil {
			return fmt.Errorf("invalid --add-host %q: want NAME:IP", h)
		}
		n.ExtraHosts = append(n.ExtraHosts, name+":"+net.ParseIP(ip).String())
	}
	n.DNSSearch, n.DNSOptions = o.DNSSearch, o.DNSOptions
	return nil
}

// validAlias: a DNS name of at most 253 characters, labels of 1-63 of
// letters, digits, '-' and '_' (Docker's names have '_' and '.').
func validAlias(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// processFlags applies -w, -e, --env-file and -t to the process.
func processFlags(c *spine.Container, o *Options) error {
	if o.Workdir != "" {
		if !path.IsAbs(o.Workdir) {
			return fmt.Errorf("the working directory '%s' is invalid, it needs to be an absolute path", o.Workdir)
		}
		c.Spec.Process.Cwd = path.Clean(o.Workdir)
	}
	for _, f := range o.EnvFiles {
		kvs, err := readEnvFile(f)
		if err != nil {
			return err
		}
		setEnv(c, kvs)
	}
	setEnv(c, o.Env)
	if o.Tty {
		c.Spec.Process.Terminal = true
		if !image.HasEnv(c.Spec.Process.Env, "TERM") {
			c.SetEnv("TERM", "xterm")
		}
	}
	return nil
}

// setEnv sets NAME=VALUE, or NAME alone to the host's value (if it has
// one), as docker run -e does.
func setEnv(c *spine.Container, kvs []string) {
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			if v, ok = os.LookupEnv(k); !ok {
				continue
			}
		}
		if k != "" {
			c.SetEnv(k, v)
		}
	}
}

// readEnvFile reads Docker's --env-file: a NAME=VALUE (or NAME) per line,
// # comments and blank lines skipped, nothing quoted or expanded.
func readEnvFile(p string) ([]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("--env-file: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(io.LimitReader(f, 16<<20))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeft(sc.Text(), " \t")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, _ := strings.Cut(line, "=")
		if k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("--env-file %s:%d: variable '%s' contains whitespaces", p, n, k)
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--env-file %s: %w", p, err)
	}
	return out, nil
}

// runtimeFlags are those of the settings: --restart, --stop-signal,
// --log-opt, -l.
func runtimeFlags(o *Options, set *engine.Settings, rec *store.Record) error {
	p, err := engine.ParseRestartPolicy(o.Restart)
	if err != nil {
		return err
	}
	if o.AutoRemove && p.Name != "no" {
		//lint:ignore ST1005 Docker's own words
		return errors.New("Conflicting options: --restart and --rm")
	}
	set.Restart = p
	if o.StopSignal != "" {
		set.StopSignal = o.StopSignal
	}
	if set.StopSignal != "" {
		if _, err := engine.ParseSignal(set.StopSignal); err != nil {
			return fmt.Errorf("--stop-signal: %w", err)
		}
	}
	if o.LogDriver != "" && o.LogDriver != "json-file" {
		return fmt.Errorf("log driver %q is not supported: berth has json-file", o.LogDriver)
	}
	set.Log = engine.LogConfig{Type: "json-file", MaxFile: 1}
	for _, opt := range o.LogOpts {
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			return fmt.Errorf("invalid --log-opt %q: want KEY=VALUE", opt)
		}
		switch k {
		case "max-size":
			n, err := units.RAMInBytes(v)
			if err != nil || n < 1 {
				return fmt.Errorf("invalid --log-opt max-size %q: want a size such as 10m", v)
			}
			set.Log.MaxSize = n
		case "max-file":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > logfile.MaxFiles {
				return fmt.Errorf("invalid --log-opt max-file %q: want a number of files, 1 to %d", v, logfile.MaxFiles)
			}
			set.Log.MaxFile = n
		default:
			return fmt.Errorf("unknown log opt '%s' for json-file log driver (berth has max-size and max-file)", k)
		}
	}
	if set.Log.MaxFile > 1 && set.Log.MaxSize == 0 {
		return errors.New("max-file cannot be set without max-size")
	}
	for _, l := range o.Labels {
		k, v, _ := strings.Cut(l, "=")
		if k == "" {
			return fmt.Errorf("invalid label %q: want KEY=VALUE", l)
		}
		rec.Labels[k] = v
	}
	return nil
}

func checkIP(s string) error {
	if net.ParseIP(s) == nil {
		return fmt.Errorf("invalid --dns %q: want an IP address", s)
	}
	return nil
}
