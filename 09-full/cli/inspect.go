//go:build linux

package cli

import (
	"cmp"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	mobynet "github.com/moby/moby/api/types/network"
	"github.com/spf13/cobra"

	"berth/04-net/network"
	"berth/09-full/engine"
	"berth/09-full/networks"
	"berth/09-full/store"

	"berth/09-full/clikit"
	"berth/09-full/imageverbs"
)

func (a *app) inspectCommand() *cobra.Command {
	var format, kind string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on containers or images, in Docker's JSON shape",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch kind {
			case "", "container", "image":
			default:
				return clikit.Usage("%q is not a valid value for --type", kind)
			}
			e, err := a.Engine()
			if err != nil {
				return err
			}
			var out []any
			var failed []string
			for _, ref := range args {
				r, err := inspectObject(e, ref, kind)
				if err != nil {
					failed = append(failed, err.Error())
					continue
				}
				out = append(out, r)
			}
			return a.PrintInspect(out, format, failed)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template")
	cmd.Flags().StringVar(&kind, "type", "", "only a container or only an image (container|image)")
	return cmd
}

// inspectObject is docker inspect's search: a container by that name or
// id, else an image (unless --type says which), in Docker's words when
// there is neither.
func inspectObject(e *engine.Engine, ref, kind string) (any, error) {
	if kind != "image" {
		r, err := inspect(e, ref)
		if err == nil {
			return r, nil
		}
		if kind == "container" || !errors.Is(err, store.ErrNotFound) {
			return nil, errors.New(clikit.Describe(err))
		}
	}
	if kind == "image" {
		return imageverbs.Describe(e.DataRoot, ref)
	}
	r, err := imageverbs.Find(e.DataRoot, ref)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, errors.New("No such object: " + ref)
	}
	return r, nil
}

// inspect describes a container as Docker's API does (moby's
// container.InspectResponse): State, Config, HostConfig, NetworkSettings,
// Mounts.
func inspect(e *engine.Engine, ref string) (*container.InspectResponse, error) {
	rec, err := e.Store.Get(ref)
	if err != nil {
		return nil, err
	}
	st, err := e.Store.View(rec.ID)
	if err != nil {
		return nil, err
	}
	cfg, err := engine.ConfigOf(rec)
	if err != nil {
		return nil, err
	}
	spec, set := cfg.Spec, cfg.Settings
	args := cfg.Command()
	r := &container.InspectResponse{
		ID:           rec.ID,
		Created:      rec.Created.UTC().Format(time.RFC3339Nano),
		Path:         args[0],
		Args:         append([]string{}, args[1:]...),
		Image:        rec.Image.ID,
		LogPath:      rec.LogPath,
		Name:         "/" + rec.Name,
		RestartCount: st.RestartCount,
		Driver:       set.StorageDriver,
		Platform:     "linux",
		State: &container.State{
			Status:     container.ContainerState(st.Status),
			Running:    st.Running(),
			Paused:     st.Status == store.Paused,
			Restarting: st.Status == store.Restarting,
			OOMKilled:  st.OOMKilled,
			Dead:       st.Status == store.Dead,
			Pid:        st.Pid,
			ExitCode:   st.ExitCode,
			Error:      st.Error,
			StartedAt:  apiTime(st.StartedAt),
			FinishedAt: apiTime(st.FinishedAt),
		},
		Config: &container.Config{
			Hostname:     spec.Hostname,
			User:         set.User,
			AttachStdin:  set.OpenStdin,
			AttachStdout: true,
			AttachStderr: true,
			Tty:          spec.Process.Terminal,
			OpenStdin:    set.OpenStdin,
			StdinOnce:    set.StdinOnce,
			Env:          spec.Process.Env,
			Cmd:          set.Cmd,
			Image:        rec.Image.Ref,
			WorkingDir:   spec.Process.Cwd,
			Entrypoint:   set.Entrypoint,
			Labels:       rec.Labels,
			StopSignal:   set.StopSignal,
			StopTimeout:  set.StopTimeout,
		},
		HostConfig: hostConfig(cfg),
		NetworkSettings: &container.NetworkSettings{
			Ports:    mobynet.PortMap{},
			Networks: map[string]*mobynet.EndpointSettings{},
		},
	}
	if !st.Running() {
		r.State.Pid = 0
	}
	inspectHealth(r, cfg, st)
	if st.Running() {
		dir := e.SpineDir(rec.ID)
		r.ResolvConfPath, r.HostnamePath, r.HostsPath = filepath.Join(dir, "resolv.conf"), filepath.Join(dir, "hostname"), filepath.Join(dir, "hosts")
	}
	if rec.Image.Ref == "" && len(set.Layers) > 0 {
		r.Config.Image = set.Layers[len(set.Layers)-1]
	}
	for _, p := range set.Network.Ports {
		port, err := mobynet.ParsePort(strconv.Itoa(int(p.CtrPort)) + "/" + p.Proto)
		if err != nil {
			continue
		}
		host := netip.IPv4Unspecified()
		if p.HostIP != "" {
			host, _ = netip.ParseAddr(p.HostIP)
		}
		r.NetworkSettings.Ports[port] = append(r.NetworkSettings.Ports[port], mobynet.PortBinding{HostIP: host, HostPort: strconv.Itoa(int(p.HostPort))})
	}
	if mode := set.Network.Mode; mode != "" {
		ep := &mobynet.EndpointSettings{Aliases: set.Network.Aliases}
		name := mode
		if set.Network.Name != "" {
			name = set.Network.Name
		}
		if set.Network.MAC != "" {
			if mac, err := net.ParseMAC(set.Network.MAC); err == nil {
				ep.MacAddress = mobynet.HardwareAddr(mac)
			}
		}
		if mode == network.ModeBridge && st.Running() {
			if n, err := networks.Open(e.DataRoot).Get(name); err == nil {
				ep.NetworkID = n.ID
				if addr, ok := n.Leases(e.StateRoot)[rec.ID]; ok {
					ep.IPAddress, ep.IPPrefixLen = addr.Addr(), addr.Bits()
					if ep.MacAddress == nil {
						ip4 := addr.Addr().As4()
						ep.MacAddress = mobynet.HardwareAddr{0x02, 0x42, ip4[0], ip4[1], ip4[2], ip4[3]}
					}
				}
				ep.Gateway, _ = netip.ParseAddr(n.Gateway)
			}
		}
		r.NetworkSettings.Networks[name] = ep
	}
	r.Mounts = []container.MountPoint{}
	for _, v := range set.Volumes {
		m := container.MountPoint{Type: "bind", Source: v.Source, Destination: v.Dest, RW: !v.ReadOnly, Propagation: "rprivate"}
		if v.Anonymous || v.Name != "" {
			m.Type, m.Name, m.Driver, m.Propagation = "volume", filepath.Base(filepath.Dir(v.Source)), "local", ""
		}
		if v.ReadOnly {
			m.Mode = "ro"
		}
		r.Mounts = append(r.Mounts, m)
	}
	return r, nil
}

func hostConfig(cfg *engine.Config) *container.HostConfig {
	spec, set := cfg.Spec, cfg.Settings
	hc := &container.HostConfig{
		LogConfig:      container.LogConfig{Type: "json-file", Config: map[string]string{}},
		NetworkMode:    container.NetworkMode(cmp.Or(set.Network.Name, set.Network.Mode)),
		PortBindings:   mobynet.PortMap{},
		RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyMode(set.Restart.Name), MaximumRetryCount: set.Restart.MaximumRetryCount},
		AutoRemove:     set.AutoRemove,
		ReadonlyRootfs: spec.Root.Readonly,
		Init:           &set.Init,
	}
	if set.Network.Mode == network.ModeContainer {
		hc.NetworkMode = container.NetworkMode("container:" + set.Network.Container)
	}
	if set.Log.MaxSize > 0 {
		hc.LogConfig.Config["max-size"] = strconv.FormatInt(set.Log.MaxSize, 10)
	}
	if set.Log.MaxFile > 1 {
		hc.LogConfig.Config["max-file"] = strconv.Itoa(set.Log.MaxFile)
	}
	for _, p := range set.Network.Ports {
		port, err := mobynet.ParsePort(strconv.Itoa(int(p.CtrPort)) + "/" + p.Proto)
		if err != nil {
			continue
		}
		var host netip.Addr
		if p.HostIP != "" {
			host, _ = netip.ParseAddr(p.HostIP)
		}
		// The host port as berth decided it at create (Docker keeps ""
		// for a port it picks at each start).
		hc.PortBindings[port] = append(hc.PortBindings[port], mobynet.PortBinding{HostIP: host, HostPort: strconv.Itoa(int(p.HostPort))})
	}
	for _, v := range set.Volumes {
		if !v.Anonymous {
			b := v.Source + ":" + v.Dest
			if v.Name != "" {
				b = v.Name + ":" + v.Dest // Docker's Binds name a volume
			}
			if v.ReadOnly {
				b += ":ro"
			}
			hc.Binds = append(hc.Binds, b)
		}
	}
	for _, d := range set.Network.DNS {
		if a, err := netip.ParseAddr(d); err == nil {
			hc.DNS = append(hc.DNS, a)
		}
	}
	if r := spec.Linux.Resources; r != nil {
		if m := r.Memory; m != nil {
			hc.Memory = deref(m.Limit)
			hc.MemorySwap = deref(m.Swap)
			hc.MemoryReservation = deref(m.Reservation)
			if m.Swappiness != nil {
				s := int64(*m.Swappiness)
				hc.MemorySwappiness = &s
			}
			hc.OomKillDisable = m.DisableOOMKiller
		}
		if c := r.CPU; c != nil {
			if c.Shares != nil {
				hc.CPUShares = int64(*c.Shares)
			}
			if c.Quota != nil && c.Period != nil && *c.Period > 0 {
				hc.CPUQuota, hc.CPUPeriod = *c.Quota, int64(*c.Period)
				if *c.Period == 100000 {
					hc.NanoCPUs, hc.CPUQuota, hc.CPUPeriod = *c.Quota*10000, 0, 0
				}
			}
			hc.CpusetCpus, hc.CpusetMems = c.Cpus, c.Mems
		}
		if p := r.Pids; p != nil && p.Limit != nil {
			hc.PidsLimit = p.Limit
		}
		if b := r.BlockIO; b != nil && b.Weight != nil {
			hc.BlkioWeight = *b.Weight
		}
	}
	return hc
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// apiTime is a time as Docker's API writes it; the zero time is
// "0001-01-01T00:00:00Z", as in Docker.
func apiTime(t time.Time) string {
	return strings.TrimSpace(t.UTC().Format(time.RFC3339Nano))
}
