//go:build linux

package daemon

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/moby/moby/api/types/image"

	imgstore "berth/08-image/store"
	"berth/09-full/imageverbs"
)

func (s *Server) imageRoutes() {
	s.handle("GET /images/json", s.images)
	// An image's name has slashes (library/busybox), so it cannot be one
	// path segment: /images/NAME/json is matched by hand.
	s.handle("GET /images/{rest...}", s.imageInspect)
	// docker run pulls an image it does not find: say, in one line, what
	// to do instead, rather than a bare 404.
	s.handle("POST /images/create", func(w http.ResponseWriter, r *http.Request) error {
		ref := r.URL.Query().Get("fromImage")
		if tag := r.URL.Query().Get("tag"); tag != "" {
			ref += ":" + tag
		}
		return errorf(http.StatusNotImplemented, "berth daemon cannot pull images yet: run berth pull %s, then try again", imgstore.FamiliarName(ref))
	})
}

// images is GET /images/json: one entry per image (by id), with every
// name it has, in the shape `berth image inspect` gives it.
func (s *Server) images(w http.ResponseWriter, r *http.Request) error {
	if r.URL.Query().Get("filters") != "" && r.URL.Query().Get("filters") != "{}" {
		return badRequest("image filters are not supported yet")
	}
	all, err := imgstore.NewStore(s.eng.DataRoot).List()
	if err != nil {
		return err
	}
	out := []image.Summary{}
	seen := map[string]bool{}
	for _, img := range all {
		id := img.ID().String()
		if seen[id] {
			continue
		}
		seen[id] = true
		d, err := imageverbs.Describe(s.eng.DataRoot, id)
		if err != nil {
			continue // removed meanwhile
		}
		sum := image.Summary{
			ID: d.ID, ParentID: d.Parent, RepoTags: d.RepoTags, RepoDigests: d.RepoDigests,
			Size: d.Size, Containers: -1, SharedSize: -1, Labels: map[string]string{},
		}
		if t, err := time.Parse(time.RFC3339Nano, d.Created); err == nil {
			sum.Created = t.Unix()
		}
		if d.Config != nil && d.Config.Labels != nil {
			sum.Labels = d.Config.Labels
		}
		out = append(out, sum)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// imageInspect is GET /images/{name}/json: `berth image inspect`'s
// answer.
func (s *Server) imageInspect(w http.ResponseWriter, r *http.Request) error {
	name, ok := strings.CutSuffix(r.PathValue("rest"), "/json")
	if !ok || name == "" {
		return notFound("page not found")
	}
	if _, err := imgstore.NewStore(s.eng.DataRoot).Get(name); errors.Is(err, imgstore.ErrNotFound) {
		return notFound("No such image: " + name)
	}
	d, err := imageverbs.Describe(s.eng.DataRoot, name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}
