//go:build linux

// Package daemon is `berth daemon`: the Docker Engine API over HTTP on a
// unix socket, so that the docker CLI and every tool built on the API
// drive berth. It is a front door, not a second engine: each request is
// served by the same engine and store as the command line (a container
// `berth run -d` made shows in `docker ps`, and the other way round), and
// a container never depends on the daemon (its monitor is its parent).
// One idea per file: the server and its socket (daemon.go, listen.go),
// version negotiation (version.go), errors (errors.go), containers
// (containers.go, create.go, streams.go), images (images.go).
package daemon

import (
	"net"
	"net/http"
	"time"

	"github.com/moby/moby/api/types/container"

	"berth/09-full/engine"
	"berth/09-full/specgen"
	"berth/09-full/store"
)

// Options are what the daemon borrows from the command line, so that a
// container looks the same through `berth inspect` and `docker inspect`
// and is made by the same code through `berth run` and `docker run`.
type Options struct {
	Engine *engine.Engine
	// Inspect is `berth inspect`'s container in Docker's shape.
	Inspect func(e *engine.Engine, ref string) (*container.InspectResponse, error)
	// Status is `berth ps`'s STATUS column (Up 3 seconds, Exited (0) ...).
	Status func(rec *store.Record, st *store.State) string
	// Create is `berth create`'s work on parsed options.
	Create func(e *engine.Engine, o *specgen.Options, ref string, args []string) (*store.Record, error)
	// Version is berth's own version, as /version reports it.
	Version string
}

// Server answers the API's requests.
type Server struct {
	o   Options
	eng *engine.Engine
	mux *http.ServeMux
}

// New makes the server and its routes.
func New(o Options) *Server {
	s := &Server{o: o, eng: o.Engine, mux: http.NewServeMux()}
	s.versionRoutes()
	s.containerRoutes()
	s.imageRoutes()
	return s
}

// Serve answers on l until it is closed. The server's limits: a request's
// header must come whole within 10 s and in 64 KiB (a client that
// trickles one in holds a goroutine, not the daemon); bodies are bounded
// where they are read (decode). No write timeout: logs -f and attach
// stream for as long as the container lives.
func (s *Server) Serve(l net.Listener) error {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	return hs.Serve(l)
}

// ServeHTTP takes the version off the path (/v1.44/containers/json is
// /containers/json at API 1.44), refuses a version it cannot honour, and
// routes the rest; a path outside the API gets Docker's 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Api-Version", APIVersion)
	h.Set("Server", "Berth/"+s.o.Version+" (linux)")
	h.Set("Ostype", "linux")
	h.Set("Docker-Experimental", "false")
	path, err := stripVersion(r.URL.Path)
	if err != nil {
		writeError(w, err)
		return
	}
	r.URL.Path, r.URL.RawPath = path, ""
	if _, pattern := s.mux.Handler(r); pattern == "" {
		writeError(w, notFound("page not found"))
		return
	}
	s.mux.ServeHTTP(w, r)
}

// handle registers fn under pattern; fn's error is written in Docker's
// shape.
func (s *Server) handle(pattern string, fn func(w http.ResponseWriter, r *http.Request) error) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			writeError(w, err)
		}
	})
}
