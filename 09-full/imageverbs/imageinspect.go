//go:build linux

package imageverbs

import (
	"errors"
	"strings"
	"time"

	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/image"
	"github.com/spf13/cobra"

	"berth/08-image/build"
	imagestore "berth/08-image/store"
)

// Image is what docker image inspect prints for an image: moby's
// image.InspectResponse, and the Parent that docker's classic builder
// sets (the API omits it when empty since v1.52; berth's builder is the
// classic one, so a built image has one).
type Image struct {
	image.InspectResponse
	Parent string `json:",omitempty"`
}

// imageInspectCommand is `berth image inspect`: Docker's shape, where
// stage 08's own inspect printed the manifest and the config as stored.
func (a *app) imageInspectCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] IMAGE [IMAGE...]",
		Short: "Display detailed information on one or more images, in Docker's JSON shape",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.Engine()
			if err != nil {
				return err
			}
			s := imagestore.NewStore(e.DataRoot)
			var out []any
			var failed []string
			for _, ref := range args {
				r, err := inspectImage(s, ref)
				if err != nil {
					failed = append(failed, describeImageErr(err))
					continue
				}
				out = append(out, r)
			}
			return a.PrintInspect(out, format, failed)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template")
	return cmd
}

// describeImageErr says a missing image in Docker's words.
func describeImageErr(err error) string {
	if errors.Is(err, imagestore.ErrNotFound) {
		return "No such image: " + notFoundRef(err)
	}
	return err.Error()
}

// notFoundRef is the name a "no such …: NAME" error was about.
func notFoundRef(err error) string {
	msg := err.Error()
	if _, ref, ok := strings.Cut(msg, ": "); ok {
		return ref
	}
	return msg
}

// inspectImage describes an image as Docker's API does: its id (the
// config's digest), every name it has (RepoTags, Docker's short form),
// the name@digest of its manifest for each (RepoDigests, as Docker's
// containerd store lists them), its config, platform, size (as berth
// images shows it), the diff ids of its layers, the manifest's
// descriptor, and the image it was built on.
func inspectImage(s *imagestore.Store, ref string) (*Image, error) {
	img, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	c := img.Config
	desc := img.Descriptor
	desc.Annotations = nil // the store's index names it there; Docker's has no name
	r := &Image{InspectResponse: image.InspectResponse{
		ID:           img.ID().String(),
		RepoTags:     []string{},
		RepoDigests:  []string{},
		Author:       c.Author,
		Config:       &dockerspec.DockerOCIImageConfig{ImageConfig: c.Config, DockerOCIImageConfigExt: img.Docker},
		Architecture: c.Architecture,
		Variant:      c.Variant,
		Os:           c.OS,
		OsVersion:    c.OSVersion,
		Size:         img.Size(),
		RootFS:       image.RootFS{Type: "layers"},
		Descriptor:   &desc,
	}}
	if c.Created != nil {
		r.Created = c.Created.UTC().Format(time.RFC3339Nano)
	}
	for _, d := range c.RootFS.DiffIDs {
		r.RootFS.Layers = append(r.RootFS.Layers, d.String())
	}
	var parent *imagestore.Image
	for _, o := range all {
		if o.ID() == img.ID() && o.Name != "" {
			r.RepoTags = append(r.RepoTags, o.FamiliarName())
			if n, err := reference.ParseNormalizedNamed(o.Name); err == nil {
				if d, err := reference.WithDigest(reference.TrimNamed(n), o.Descriptor.Digest); err == nil {
					r.RepoDigests = appendNew(r.RepoDigests, reference.FamiliarString(d))
				}
			}
		}
		// The parent: the closest image this one is built on (the one
		// with the most history of its own).
		if o.ID() != img.ID() && build.IsParent(o, img) &&
			(parent == nil || len(o.Config.History) > len(parent.Config.History)) {
			parent = o
		}
	}
	if parent != nil {
		r.Parent = parent.ID().String()
	}
	return r, nil
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// imageOrNil describes an image for berth inspect's fallback: nil when no
// image has that name, an error when one does and cannot be read.
func imageOrNil(dataRoot, ref string) (*Image, error) {
	if _, err := imagestore.NormalizeName(ref); err != nil && !imagestore.IsHexPrefix(strings.TrimPrefix(ref, "sha256:")) {
		return nil, nil // not an image's name (a container's id, say)
	}
	r, err := inspectImage(imagestore.NewStore(dataRoot), ref)
	if errors.Is(err, imagestore.ErrNotFound) {
		return nil, nil
	}
	return r, err
}
