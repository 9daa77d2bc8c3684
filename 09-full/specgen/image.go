//go:build linux

package specgen

import (
	"context"
	"errors"
	"fmt"

	"berth/01-uts/spine"
	"berth/08-image/image"
	imgstore "berth/08-image/store"
	"berth/09-full/engine"
	"berth/09-full/store"
)

// fromImage takes what docker run takes from an image: its layers, the
// command (ENTRYPOINT + CMD, or the arguments), ENV, WORKDIR, USER (or
// -u), labels and STOPSIGNAL.
func fromImage(c *spine.Container, o *Options, ref string, rec *store.Record, set *engine.Settings) ([]string, error) {
	st := imgstore.NewStore(c.DataRoot)
	img, err := st.Get(ref)
	if errors.Is(err, imgstore.ErrNotFound) {
		//lint:ignore ST1005 Docker's own words
		return nil, fmt.Errorf("Unable to find image '%s' locally: pull it (berth pull %s), load it or build it", ref, ref)
	}
	if err != nil {
		return nil, err
	}
	dirs, err := st.Unpack(context.Background(), img)
	if err != nil {
		return nil, err
	}
	cfg := img.Config.Config
	if o.Entrypoint != nil {
		cfg.Entrypoint, cfg.Cmd = nil, nil // as docker run --entrypoint: the CMD goes too
		if *o.Entrypoint != "" {
			cfg.Entrypoint = []string{*o.Entrypoint}
		}
	}
	set.Entrypoint, set.Cmd = cfg.Entrypoint, cfg.Cmd
	if len(c.Spec.Process.Args) > 0 {
		set.Cmd = c.Spec.Process.Args
	}
	user := image.ApplyConfig(c, cfg, o.User)
	set.User = user
	layers := image.UniqueLayers(dirs)
	if err := setUser(c, user, layers); err != nil {
		return nil, fmt.Errorf("image %s: %w", img.FamiliarName(), err)
	}
	for k, v := range cfg.Labels {
		rec.Labels[k] = v
	}
	if cfg.StopSignal != "" {
		set.StopSignal = cfg.StopSignal
	}
	for p := range cfg.ExposedPorts {
		set.ExposedPorts = append(set.ExposedPorts, p)
	}
	rec.Image = store.ImageRef{Ref: ref, ID: img.ID().String()}
	// HEALTHCHECK: Docker's field of the config, beside the OCI ones.
	set.Healthcheck = img.Docker.Healthcheck
	return layers, nil
}

// setUser resolves USER against the root's /etc/passwd and /etc/group and
// sets HOME from it (unless the environment has one).
func setUser(c *spine.Container, user string, layers []string) error {
	u, err := image.ResolveUser(user, layers)
	if err != nil {
		return err
	}
	c.Spec.Process.User = u.SpecUser()
	if !image.HasEnv(c.Spec.Process.Env, "HOME") {
		home := u.Home
		if home == "" {
			home = "/"
		}
		c.SetEnv("HOME", home)
	}
	return nil
}

// unique drops a layer that is already higher in the stack (overlay
// refuses a lower directory twice).
