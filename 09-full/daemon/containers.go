//go:build linux

package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	mobynet "github.com/moby/moby/api/types/network"

	"berth/09-full/engine"
	"berth/09-full/store"
)

func (s *Server) containerRoutes() {
	s.handle("GET /containers/json", s.list)
	s.handle("POST /containers/create", s.create)
	s.handle("GET /containers/{id}/json", s.inspect)
	s.handle("POST /containers/{id}/start", s.start)
	s.handle("POST /containers/{id}/stop", s.stop)
	s.handle("POST /containers/{id}/restart", s.restart)
	s.handle("POST /containers/{id}/kill", s.kill)
	s.handle("DELETE /containers/{id}", s.remove)
	s.handle("POST /containers/{id}/wait", s.wait)
	s.handle("GET /containers/{id}/logs", s.logs)
	s.handle("POST /containers/{id}/attach", s.attach)
	s.handle("POST /containers/{id}/resize", s.resize)
}

// record finds the container of the path's {id}: Docker's 404 if none.
func (s *Server) record(r *http.Request) (*store.Record, *store.State, error) {
	ref := r.PathValue("id")
	rec, err := s.eng.Store.Get(ref)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, noSuchContainer(ref)
	}
	if err != nil {
		return nil, nil, err
	}
	st, err := s.eng.Store.View(rec.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, noSuchContainer(ref)
	}
	return rec, st, err
}

func boolParam(r *http.Request, name string) bool {
	v := r.URL.Query().Get(name)
	return v == "1" || strings.EqualFold(v, "true")
}

// timeoutParam is stop's and restart's ?t= (or ?timeout=): nil for the
// container's own.
func timeoutParam(r *http.Request) (*int, error) {
	q := r.URL.Query()
	v := q.Get("t")
	if v == "" {
		v = q.Get("timeout")
	}
	if v == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil, badRequest(fmt.Sprintf("invalid value for t: %q", v))
	}
	return &n, nil
}

func (s *Server) inspect(w http.ResponseWriter, r *http.Request) error {
	rec, _, err := s.record(r)
	if err != nil {
		return err
	}
	resp, err := s.o.Inspect(s.eng, rec.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) start(w http.ResponseWriter, r *http.Request) error {
	rec, st, err := s.record(r)
	if err != nil {
		return err
	}
	if st.Running() {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if err := s.eng.Start(rec.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request) error {
	t, err := timeoutParam(r)
	if err != nil {
		return err
	}
	rec, st, err := s.record(r)
	if err != nil {
		return err
	}
	if !st.Running() && st.Status != store.Restarting {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if err := s.eng.Stop(rec.ID, t); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) restart(w http.ResponseWriter, r *http.Request) error {
	t, err := timeoutParam(r)
	if err != nil {
		return err
	}
	rec, _, err := s.record(r)
	if err != nil {
		return err
	}
	if err := s.eng.Stop(rec.ID, t); err != nil {
		return err
	}
	if err := s.eng.Start(rec.ID); err != nil {
		return err
	}
	s.eng.Event(rec, "restart", nil)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) kill(w http.ResponseWriter, r *http.Request) error {
	name := r.URL.Query().Get("signal")
	if name == "" {
		name = "KILL"
	}
	sig, err := engine.ParseSignal(name)
	if err != nil {
		return badRequest(err.Error())
	}
	rec, st, err := s.record(r)
	if err != nil {
		return err
	}
	if !st.Running() {
		return conflict(fmt.Sprintf("cannot kill container: %s: container %s is not running", r.PathValue("id"), rec.ID))
	}
	if err := s.eng.Kill(rec.ID, sig); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) remove(w http.ResponseWriter, r *http.Request) error {
	rec, st, err := s.record(r)
	if err != nil {
		return err
	}
	force := boolParam(r, "force")
	if !force && (st.Running() || st.Status == store.Restarting) {
		return conflict(fmt.Sprintf("cannot remove container %q: container is %s: stop the container before removing or force remove", "/"+rec.Name, st.Status))
	}
	if boolParam(r, "link") {
		return badRequest("links are not supported")
	}
	if err := s.eng.Remove(rec.ID, force, boolParam(r, "v")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listFilters is GET /containers/json's ?filters=: each key may repeat
// (any of its values matches), different keys must all match.
type listFilters map[string][]string

// parseFilters reads both of Docker's encodings: {"status":{"running":
// true}} and the older {"status":["running"]}.
func parseFilters(raw string) (listFilters, error) {
	f := listFilters{}
	if raw == "" {
		return f, nil
	}
	var m map[string]map[string]bool
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		var l map[string][]string
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			return nil, badRequest("invalid filters: " + err.Error())
		}
		for k, vs := range l {
			m2 := map[string]bool{}
			for _, v := range vs {
				m2[v] = true
			}
			if m == nil {
				m = map[string]map[string]bool{}
			}
			m[k] = m2
		}
	}
	for k, vs := range m {
		for v, on := range vs {
			if !on {
				continue
			}
			switch k {
			case "status":
				switch v {
				case store.Created, store.Running, store.Paused, store.Restarting, store.Removing, store.Exited, store.Dead:
				default:
					return nil, badRequest(fmt.Sprintf("invalid filter 'status=%s'", v))
				}
			case "name":
				if _, err := regexp.Compile(v); err != nil {
					return nil, badRequest(fmt.Sprintf("invalid filter 'name=%s': %v", v, err))
				}
			case "label", "id":
			default:
				return nil, badRequest(fmt.Sprintf("invalid filter '%s'", k))
			}
			f[k] = append(f[k], v)
		}
	}
	return f, nil
}

func (f listFilters) match(rec *store.Record, st *store.State) bool {
	for k, vals := range f {
		ok := false
		for _, v := range vals {
			switch k {
			case "status":
				ok = st.Status == v
			case "name":
				ok, _ = regexp.MatchString(v, rec.Name)
			case "id":
				ok = strings.HasPrefix(rec.ID, v)
			case "label":
				lk, lv, hasValue := strings.Cut(v, "=")
				got, has := rec.Labels[lk]
				ok = has && (!hasValue || got == lv)
			}
			if ok {
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) error {
	f, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	all := boolParam(r, "all") || len(f["status"]) > 0
	limit := -1
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil {
			return badRequest(fmt.Sprintf("invalid limit %q", v))
		}
	}
	recs, err := s.eng.Store.List()
	if err != nil {
		return err
	}
	out := []container.Summary{}
	for _, rec := range recs {
		st, err := s.eng.Store.View(rec.ID)
		if err != nil {
			continue // removed meanwhile
		}
		if !all && limit <= 0 && !st.Running() && st.Status != store.Restarting {
			continue
		}
		if !f.match(rec, st) {
			continue
		}
		out = append(out, s.summary(rec, st))
		if limit > 0 && len(out) == limit {
			break
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// summary is one container as docker ps gets it.
func (s *Server) summary(rec *store.Record, st *store.State) container.Summary {
	c := container.Summary{
		ID: rec.ID, Names: []string{"/" + rec.Name}, Image: rec.Image.Ref, ImageID: rec.Image.ID,
		Created: rec.Created.Unix(), Labels: rec.Labels, State: container.ContainerState(st.Status),
		Status: s.o.Status(rec, st), Ports: []container.PortSummary{}, Mounts: []container.MountPoint{},
	}
	if c.Labels == nil {
		c.Labels = map[string]string{}
	}
	cfg, err := engine.ConfigOf(rec)
	if err != nil {
		return c
	}
	c.Command = strings.Join(cfg.Command(), " ")
	set := cfg.Settings
	if c.Image == "" && len(set.Layers) > 0 {
		c.Image = set.Layers[len(set.Layers)-1] // --rootfs DIR
	}
	c.HostConfig.NetworkMode = set.Network.Mode
	if set.Network.Name != "" {
		c.HostConfig.NetworkMode = set.Network.Name
	}
	for _, p := range set.Network.Ports {
		ps := container.PortSummary{PrivatePort: p.CtrPort, PublicPort: p.HostPort, Type: p.Proto}
		if p.HostIP != "" {
			ps.IP, _ = netip.ParseAddr(p.HostIP)
		} else {
			ps.IP = netip.IPv4Unspecified()
		}
		c.Ports = append(c.Ports, ps)
	}
	c.NetworkSettings = &container.NetworkSettingsSummary{Networks: map[string]*mobynet.EndpointSettings{c.HostConfig.NetworkMode: {}}}
	for _, v := range set.Volumes {
		m := container.MountPoint{Type: "bind", Source: v.Source, Destination: v.Dest, RW: !v.ReadOnly}
		if v.Anonymous || v.Name != "" {
			m.Type, m.Driver = "volume", "local"
		}
		c.Mounts = append(c.Mounts, m)
	}
	sort.Strings(c.Names)
	return c
}
