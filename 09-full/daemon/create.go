//go:build linux

package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	mobynet "github.com/moby/moby/api/types/network"

	imgstore "berth/08-image/store"
	"berth/09-full/specgen"
)

// create is POST /containers/create: the API's Config and HostConfig
// mapped onto the options `berth create`'s flags fill, then the same
// code. What berth does not map is refused, by name, in one error:
// a container made without a setting its client asked for would be
// worse than none.
func (s *Server) create(w http.ResponseWriter, r *http.Request) error {
	var req container.CreateRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	o, ref, args, err := options(&req, r.URL.Query().Get("name"))
	if err != nil {
		return err
	}
	if r.URL.Query().Get("platform") != "" {
		return badRequest("platform: berth runs the host's own platform only")
	}
	if _, err := imgstore.NewStore(s.eng.DataRoot).Get(ref); err != nil {
		if errors.Is(err, imgstore.ErrNotFound) {
			return notFound("No such image: " + ref)
		}
		return err
	}
	rec, err := s.o.Create(s.eng, o, ref, args)
	if err != nil {
		if rec != nil && o.AutoRemove {
			_ = s.eng.Remove(rec.ID, true, true)
		}
		return err
	}
	writeJSON(w, http.StatusCreated, container.CreateResponse{ID: rec.ID, Warnings: []string{}})
	return nil
}

// options maps a create request onto specgen's options, the image and
// the command; then checks that nothing it did not map is left set.
func options(req *container.CreateRequest, name string) (*specgen.Options, string, []string, error) {
	if req.Config == nil {
		req.Config = &container.Config{}
	}
	if req.HostConfig == nil {
		req.HostConfig = &container.HostConfig{}
	}
	c, h := req.Config, req.HostConfig
	if c.Image == "" {
		return nil, "", nil, badRequest("config.Image: an image is required")
	}
	o := &specgen.Options{
		Name: name, Workdir: c.WorkingDir, User: c.User, Hostname: c.Hostname, Tty: c.Tty,
		Interactive: c.OpenStdin, KeepStdin: c.OpenStdin && !c.StdinOnce, StopSignal: c.StopSignal,
		StopTimeout: c.StopTimeout, AutoRemove: h.AutoRemove, ReadOnly: h.ReadonlyRootfs,
		PublishAll: h.PublishAllPorts, Restart: "no", LogDriver: "json-file", StorageDriver: "auto",
	}
	for _, kv := range c.Env {
		// NAME alone means the host's value on the command line: here the
		// host is the daemon, whose environment is not the client's.
		if !strings.Contains(kv, "=") {
			return nil, "", nil, badRequest(fmt.Sprintf("Env %q: want NAME=VALUE", kv))
		}
	}
	o.Env = c.Env
	for k, v := range c.Labels {
		o.Labels = append(o.Labels, k+"="+v)
	}
	sort.Strings(o.Labels)
	switch {
	case c.Entrypoint == nil:
	case len(c.Entrypoint) <= 1:
		ep := ""
		if len(c.Entrypoint) == 1 {
			ep = c.Entrypoint[0]
		}
		o.Entrypoint = &ep
	default:
		return nil, "", nil, badRequest("Entrypoint: berth takes an entrypoint of one word (its arguments go in Cmd)")
	}
	for v := range c.Volumes {
		o.Volumes = append(o.Volumes, v)
	}
	sort.Strings(o.Volumes)
	o.Volumes = append(o.Volumes, h.Binds...)
	if mode := string(h.NetworkMode); mode != "default" {
		o.Network = mode
	}
	if err := ports(o, c, h); err != nil {
		return nil, "", nil, err
	}
	switch p := h.RestartPolicy; p.Name {
	case "", "no":
	case "on-failure":
		o.Restart = "on-failure"
		if p.MaximumRetryCount > 0 {
			o.Restart += ":" + strconv.Itoa(p.MaximumRetryCount)
		}
	default:
		o.Restart = string(p.Name)
	}
	switch h.LogConfig.Type {
	case "", "json-file":
	default:
		return nil, "", nil, badRequest(fmt.Sprintf("log driver %q: berth has json-file only", h.LogConfig.Type))
	}
	for k, v := range h.LogConfig.Config {
		o.LogOpts = append(o.LogOpts, k+"="+v)
	}
	sort.Strings(o.LogOpts)
	if h.Init != nil {
		o.Init = *h.Init
	}
	for _, a := range h.DNS {
		o.DNS = append(o.DNS, a.String())
	}
	o.DNSSearch, o.DNSOptions, o.AddHosts = h.DNSSearch, h.DNSOptions, h.ExtraHosts
	if err := endpoint(o, req); err != nil {
		return nil, "", nil, err
	}
	ref, args := c.Image, []string(c.Cmd)
	if err := unmapped(req); err != nil {
		return nil, "", nil, err
	}
	return o, ref, args, nil
}

// ports maps PortBindings onto -p's syntax; an exposed port must be one
// of them (berth has no --expose yet).
func ports(o *specgen.Options, c *container.Config, h *container.HostConfig) error {
	keys := make([]mobynet.Port, 0, len(h.PortBindings))
	for p := range h.PortBindings {
		keys = append(keys, p)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, p := range keys {
		k, bs := p.String(), h.PortBindings[p]
		if len(bs) == 0 {
			o.Publish = append(o.Publish, k) // a free host port
		}
		for _, b := range bs {
			spec := k
			if b.HostPort != "" || b.HostIP.IsValid() {
				spec = b.HostPort + ":" + k
			}
			if b.HostIP.IsValid() {
				spec = b.HostIP.String() + ":" + spec
			}
			o.Publish = append(o.Publish, spec)
		}
	}
	for p := range c.ExposedPorts {
		if _, ok := h.PortBindings[p]; !ok && !h.PublishAllPorts {
			return badRequest(fmt.Sprintf("ExposedPorts %s: berth publishes ports (-p) but has no --expose yet", p))
		}
	}
	return nil
}

// endpoint maps the one endpoint the request may name (the network of
// NetworkMode): its aliases and IPv4 address.
func endpoint(o *specgen.Options, req *container.CreateRequest) error {
	if req.NetworkingConfig == nil {
		return nil
	}
	eps := req.NetworkingConfig.EndpointsConfig
	mode := string(req.HostConfig.NetworkMode)
	for name, ep := range eps {
		if name != mode && !(name == "default" && mode == "") {
			return badRequest(fmt.Sprintf("NetworkingConfig: endpoint %q: berth connects a container to its NetworkMode's network only", name))
		}
		if ep == nil {
			continue
		}
		o.NetworkAliases = ep.Aliases
		if ep.IPAMConfig != nil && ep.IPAMConfig.IPv4Address.IsValid() {
			o.IP = ep.IPAMConfig.IPv4Address.String()
		}
	}
	return nil
}

// unmapped refuses a request that sets anything options did not map.
// The mapped fields are cleared, then whatever is left that is not its
// zero value (false, 0, "", null, empty) is named in the error.
func unmapped(req *container.CreateRequest) error {
	c, h := *req.Config, *req.HostConfig
	c.Hostname, c.User, c.Tty, c.OpenStdin, c.StdinOnce, c.Env, c.Cmd, c.Image = "", "", false, false, false, nil, nil, ""
	c.Volumes, c.WorkingDir, c.Entrypoint, c.Labels, c.StopSignal, c.StopTimeout, c.ExposedPorts = nil, "", nil, nil, "", nil, nil
	// Which streams a client will attach is the client's business.
	c.AttachStdin, c.AttachStdout, c.AttachStderr = false, false, false
	h.Binds, h.NetworkMode, h.PortBindings, h.PublishAllPorts, h.AutoRemove = nil, "", nil, false, false
	h.RestartPolicy, h.LogConfig, h.Init, h.ReadonlyRootfs = container.RestartPolicy{}, container.LogConfig{}, nil, false
	h.DNS, h.DNSSearch, h.DNSOptions, h.ExtraHosts = nil, nil, nil, nil
	// The terminal's first size: the client sends a resize once started.
	h.ConsoleSize = [2]uint{}
	if h.MemorySwappiness != nil && *h.MemorySwappiness == -1 {
		h.MemorySwappiness = nil // the CLI's "unset"
	}
	rest := map[string]any{"Config": c, "HostConfig": h}
	if n := req.NetworkingConfig; n != nil {
		eps := map[string]any{}
		for name, ep := range n.EndpointsConfig {
			if ep == nil {
				continue
			}
			e := *ep
			e.Aliases = nil
			if e.IPAMConfig != nil {
				ipam := *e.IPAMConfig
				ipam.IPv4Address = netip.Addr{}
				e.IPAMConfig = &ipam
			}
			eps[name] = e
		}
		rest["NetworkingConfig"] = eps
	}
	b, err := json.Marshal(rest)
	if err != nil {
		return err
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	var set []string
	leftovers("", v, &set)
	if len(set) > 0 {
		sort.Strings(set)
		return badRequest(fmt.Sprintf("berth does not support %s yet: refused rather than ignored", strings.Join(set, ", ")))
	}
	return nil
}

// leftovers collects the paths of the values in v that are not zero.
func leftovers(path string, v any, out *[]string) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		if x {
			*out = append(*out, path)
		}
		return x
	case float64:
		if x != 0 {
			*out = append(*out, path)
		}
		return x != 0
	case string:
		if x != "" {
			*out = append(*out, path)
		}
		return x != ""
	case []any:
		var inner []string
		for i, e := range x {
			leftovers(fmt.Sprintf("%s[%d]", path, i), e, &inner)
		}
		if len(inner) > 0 {
			*out = append(*out, path) // the list, not each of its items
		}
		return len(inner) > 0
	case map[string]any:
		any := false
		for k, e := range x {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if leftovers(p, e, out) {
				any = true
			}
		}
		return any
	}
	return false
}
