//go:build linux

package daemon

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"

	imgstore "berth/08-image/store"
	"berth/09-full/store"
)

// APIVersion is the one version of the API berth serves, and says in
// every answer's Api-Version header. A client takes the lower of its own
// and this (the docker CLI 28 speaks 1.50, so it sends /v1.44/...). Why
// 1.44: the request and answer bodies are moby/api v1.53's types, and
// 1.44 is the oldest version those types still describe (Docker 29, whose
// types they are, refuses older clients); berth answers one shape, so it
// claims only the oldest version that shape is right for, rather than
// promise 1.45-1.53's additions it does not have.
const (
	APIVersion    = "1.44"
	MinAPIVersion = "1.44"
)

// stripVersion takes /vX.Y off a path, refusing a version outside the
// range berth serves, in Docker's words.
func stripVersion(path string) (string, error) {
	rest, ok := strings.CutPrefix(path, "/v")
	if !ok {
		return path, nil
	}
	v, tail, _ := strings.Cut(rest, "/")
	if _, err := parseVersion(v); err != nil {
		return path, nil // not a version: a path like any other (404)
	}
	switch {
	case compareVersions(v, APIVersion) > 0:
		return "", badRequest(fmt.Sprintf("client version %s is too new. Maximum supported API version is %s", v, APIVersion))
	case compareVersions(v, MinAPIVersion) < 0:
		return "", badRequest(fmt.Sprintf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", v, MinAPIVersion))
	}
	return "/" + tail, nil
}

func parseVersion(v string) ([2]int, error) {
	maj, min, ok := strings.Cut(v, ".")
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	if !ok || err1 != nil || err2 != nil || a < 0 || b < 0 {
		return [2]int{}, fmt.Errorf("bad version %q", v)
	}
	return [2]int{a, b}, nil
}

func compareVersions(a, b string) int {
	x, _ := parseVersion(a)
	y, _ := parseVersion(b)
	for i := range x {
		if x[i] != y[i] {
			if x[i] < y[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

func (s *Server) versionRoutes() {
	ping := func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate")
		w.Header().Set("Pragma", "no-cache")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Builder-Version", "1")
		if r.Method == http.MethodHead {
			w.Header().Set("Content-Length", "0")
			return nil
		}
		_, err := w.Write([]byte("OK"))
		return err
	}
	s.handle("GET /_ping", ping)
	s.handle("HEAD /_ping", ping)
	s.handle("GET /version", s.version)
	s.handle("GET /info", s.info)
}

func kernel() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) error {
	v := system.VersionResponse{
		Platform:      system.PlatformInfo{Name: "berth"},
		Version:       s.o.Version,
		APIVersion:    APIVersion,
		MinAPIVersion: MinAPIVersion,
		Os:            "linux",
		Arch:          runtime.GOARCH,
		GoVersion:     runtime.Version(),
		KernelVersion: kernel(),
		Components: []system.ComponentVersion{{Name: "Engine", Version: s.o.Version,
			Details: map[string]string{"ApiVersion": APIVersion, "MinAPIVersion": MinAPIVersion, "Os": "linux", "Arch": runtime.GOARCH, "KernelVersion": kernel(), "GoVersion": runtime.Version()}}},
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) error {
	recs, err := s.eng.Store.List()
	if err != nil {
		return err
	}
	in := system.Info{
		ID: "berth", Containers: len(recs), ServerVersion: s.o.Version, Driver: "overlay",
		DockerRootDir: s.eng.DataRoot, LoggingDriver: "json-file", CgroupDriver: "cgroupfs",
		OSType: "linux", Architecture: runtime.GOARCH, NCPU: runtime.NumCPU(), KernelVersion: kernel(),
		OperatingSystem: "berth on Linux", DefaultRuntime: "berth", IndexServerAddress: "https://index.docker.io/v1/",
	}
	in.Swarm.LocalNodeState = "inactive"
	in.CgroupVersion = "1"
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		in.CgroupVersion = "2"
	}
	if host, err := os.Hostname(); err == nil {
		in.Name = host
	}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		in.MemTotal = int64(si.Totalram) * int64(si.Unit)
	}
	for _, rec := range recs {
		st, err := s.eng.Store.View(rec.ID)
		if err != nil {
			continue
		}
		switch st.Status {
		case store.Running, store.Restarting:
			in.ContainersRunning++
		case store.Paused:
			in.ContainersPaused++
		default:
			in.ContainersStopped++
		}
	}
	if imgs, err := imgstore.NewStore(s.eng.DataRoot).List(); err == nil {
		ids := map[string]bool{}
		for _, i := range imgs {
			ids[i.ID().String()] = true
		}
		in.Images = len(ids)
	}
	writeJSON(w, http.StatusOK, in)
	return nil
}
