//go:build linux

package specgen

import (
	"encoding/csv"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth/07-unionfs/layer"
	"berth/09-full/engine"
	"berth/09-full/security"
	"berth/09-full/store"
	"berth/09-full/volume"
)

// mountFlags reads -v, --mount and --volumes-from (--tmpfs is
// 09-full/security's) into the
// settings' volumes (binds of host directories and of the volume store's
// _data) and the spec's mounts. Nothing is made on the host here: the
// CLI creates the named and anonymous volumes once the whole command
// line is known to be good (Volumes, below).
func mountFlags(o *Options, set *engine.Settings, roots Roots) ([]specs.Mount, error) {
	vs := volume.New(roots.Data)
	var vols []layer.Volume
	var tmpfs []specs.Mount
	for _, from := range o.VolumesFrom {
		got, err := volumesFrom(from, roots)
		if err != nil {
			return nil, err
		}
		vols = append(vols, got...)
	}
	for _, v := range o.Volumes {
		vol, err := parseV(v, vs)
		if err != nil {
			return nil, err
		}
		vols = append(vols, vol)
	}
	for _, m := range o.Mounts {
		vol, tm, err := parseMount(m, vs)
		if err != nil {
			return nil, err
		}
		if tm != nil {
			tmpfs = append(tmpfs, *tm)
			continue
		}
		vols = append(vols, vol)
	}
	// One destination, one mount (Docker: "Duplicate mount point").
	seen := map[string]bool{}
	var mounts []specs.Mount
	for i, v := range vols {
		if seen[v.Dest] {
			return nil, fmt.Errorf("duplicate mount point: %s", v.Dest)
		}
		seen[v.Dest] = true
		m := v.Mount()
		if v.Name != "" {
			if tm, ok, err := tmpfsVolume(vs, v); err != nil {
				return nil, err
			} else if ok {
				m = tm
				vols[i].Fill = false // a fresh tmpfs: nothing on disk to fill
			}
		}
		mounts = append(mounts, m)
	}
	for _, m := range tmpfs {
		if seen[m.Destination] {
			return nil, fmt.Errorf("duplicate mount point: %s", m.Destination)
		}
		seen[m.Destination] = true
		mounts = append(mounts, m)
	}
	set.Volumes = vols
	return mounts, nil
}

// tmpfsVolume: a named volume made with --opt type=tmpfs is a tmpfs of
// the container's own (Docker's local driver mounts one tmpfs on _data
// that the containers running at once share; berth gives each its own,
// which holds the same nothing once they stop).
func tmpfsVolume(vs *volume.Store, v layer.Volume) (specs.Mount, bool, error) {
	got, err := vs.Get(v.Name)
	if err != nil || got.Options["type"] != "tmpfs" {
		return specs.Mount{}, false, nil // made on first use: a plain one
	}
	o := got.Options["o"]
	if v.ReadOnly {
		o = strings.TrimPrefix(o+",ro", ",")
	}
	m, err := tmpfsMount(v.Dest, o)
	return m, err == nil, err
}

// tmpfsMount is a tmpfs at dest with --tmpfs's options and defaults
// (09-full/security.AddTmpfs: noexec, nosuid, nodev).
func tmpfsMount(dest, opts string) (specs.Mount, error) {
	arg := dest
	if opts != "" {
		arg += ":" + opts
	}
	var spec specs.Spec
	if err := security.AddTmpfs(&spec, arg); err != nil {
		return specs.Mount{}, err
	}
	return spec.Mounts[0], nil
}

// parseV reads one -v: CTR (anonymous), /HOST:CTR[:ro] (a bind, stage
// 07's), or NAME:CTR[:ro][,nocopy] (a named volume, made on first use).
func parseV(v string, vs *volume.Store) (layer.Volume, error) {
	parts := strings.Split(v, ":")
	if len(parts) == 1 || filepath.IsAbs(parts[0]) {
		vol, err := layer.ParseVolume(v)
		if err != nil {
			return vol, err
		}
		if vol.Anonymous {
			return anonymous(vol, vs)
		}
		return vol, nil
	}
	if len(parts) > 3 {
		return layer.Volume{}, fmt.Errorf("invalid volume %q: use NAME:CONTAINER[:ro], /HOST:CONTAINER[:ro] or CONTAINER", v)
	}
	if err := volume.CheckName(parts[0]); err != nil {
		return layer.Volume{}, fmt.Errorf("invalid volume %q: %w", v, err)
	}
	dest, err := checkDest(parts[1], v)
	if err != nil {
		return layer.Volume{}, err
	}
	vol := layer.Volume{Name: parts[0], Source: vs.Data(parts[0]), Dest: dest, Fill: true}
	if len(parts) == 3 {
		for _, mode := range strings.Split(parts[2], ",") {
			switch mode {
			case "ro":
				vol.ReadOnly = true
			case "rw":
			case "nocopy":
				vol.Fill = false
			default:
				return vol, fmt.Errorf("invalid volume %q: mode %q: want ro, rw or nocopy", v, mode)
			}
		}
	}
	return vol, nil
}

// anonymous names a new anonymous volume, in the store like any other
// (with Docker's anonymous label), seeded from the image as stage 07's.
func anonymous(vol layer.Volume, vs *volume.Store) (layer.Volume, error) {
	name, err := volume.NewName()
	if err != nil {
		return vol, err
	}
	vol.Name, vol.Source = name, vs.Data(name)
	return vol, nil
}

// checkDest refuses a container path that is relative, / itself, or has
// ".." in it (stage 03 resolves it inside the root in any case).
func checkDest(dest, what string) (string, error) {
	if !path.IsAbs(dest) || path.Clean(dest) == "/" {
		return "", fmt.Errorf("invalid mount %q: the container path must be absolute and not /", what)
	}
	for _, p := range strings.Split(dest, "/") {
		if p == ".." {
			return "", fmt.Errorf("invalid mount %q: the container path must not contain \"..\" components", what)
		}
	}
	return path.Clean(dest), nil
}

// parseMount reads one --mount: type=bind|volume|tmpfs with source,
// destination, readonly and the type's own keys, as Docker's CSV.
func parseMount(s string, vs *volume.Store) (layer.Volume, *specs.Mount, error) {
	fields, err := csv.NewReader(strings.NewReader(s)).Read()
	if err != nil {
		return layer.Volume{}, nil, fmt.Errorf("invalid --mount %q: %w", s, err)
	}
	typ, src, dst, ro, nocopy := "volume", "", "", false, false
	var tmpfsOpts []string
	for _, f := range fields {
		k, v, hasV := strings.Cut(f, "=")
		switch strings.ToLower(k) {
		case "type":
			typ = v
		case "source", "src":
			src = v
		case "destination", "dst", "target":
			dst = v
		case "readonly", "ro":
			ro = !hasV || v == "1" || v == "true"
			if hasV && !ro && v != "0" && v != "false" {
				return layer.Volume{}, nil, fmt.Errorf("invalid --mount %q: readonly=%s: want true or false", s, v)
			}
		case "volume-nocopy":
			nocopy = !hasV || v == "1" || v == "true"
		case "tmpfs-size":
			tmpfsOpts = append(tmpfsOpts, "size="+v)
		case "tmpfs-mode":
			tmpfsOpts = append(tmpfsOpts, "mode="+v)
		default:
			return layer.Volume{}, nil, fmt.Errorf("invalid --mount %q: unknown key %q (berth takes type, source, destination, readonly, volume-nocopy, tmpfs-size, tmpfs-mode)", s, k)
		}
	}
	dest, err := checkDest(dst, s)
	if err != nil {
		return layer.Volume{}, nil, err
	}
	switch typ {
	case "bind":
		if src == "" {
			return layer.Volume{}, nil, fmt.Errorf("invalid --mount %q: a bind needs a source", s)
		}
		spec := src + ":" + dest
		if ro {
			spec += ":ro"
		}
		vol, err := layer.ParseVolume(spec)
		if vol.Anonymous && err == nil {
			err = fmt.Errorf("invalid --mount %q: a bind's source must be an absolute host path", s)
		}
		return vol, nil, err
	case "volume":
		var vol layer.Volume
		if src == "" {
			vol, err = anonymous(layer.Volume{Dest: dest, Anonymous: true}, vs)
		} else if err = volume.CheckName(src); err == nil {
			vol = layer.Volume{Name: src, Source: vs.Data(src), Dest: dest, Fill: !nocopy}
		}
		vol.ReadOnly = ro
		if err != nil {
			return vol, nil, fmt.Errorf("invalid --mount %q: %w", s, err)
		}
		return vol, nil, nil
	case "tmpfs":
		if src != "" {
			return layer.Volume{}, nil, fmt.Errorf("invalid --mount %q: a tmpfs has no source", s)
		}
		if ro {
			tmpfsOpts = append(tmpfsOpts, "ro")
		}
		m, err := tmpfsMount(dest, strings.Join(tmpfsOpts, ","))
		if err != nil {
			return layer.Volume{}, nil, fmt.Errorf("invalid --mount %q: %w", s, err)
		}
		return layer.Volume{}, &m, nil
	}
	return layer.Volume{}, nil, fmt.Errorf("invalid --mount %q: type %q: want bind, volume or tmpfs", s, typ)
}

// volumesFrom takes CONTAINER[:ro|rw]'s volumes and binds, as that
// container has them (read-only with :ro). They stay that container's:
// an anonymous one is not removed with this one (rm -v), since this one
// did not make it.
func volumesFrom(arg string, roots Roots) ([]layer.Volume, error) {
	ref, mode, _ := strings.Cut(arg, ":")
	if mode != "" && mode != "ro" && mode != "rw" {
		return nil, fmt.Errorf("invalid --volumes-from %q: mode must be ro or rw", arg)
	}
	st, err := store.Open(roots.Data, roots.State)
	if err != nil {
		return nil, err
	}
	rec, err := st.Get(ref)
	if err != nil {
		return nil, fmt.Errorf("--volumes-from: %w", err)
	}
	set, err := engine.DecodeSettings(rec.Settings)
	if err != nil {
		return nil, fmt.Errorf("--volumes-from %s: %w", ref, err)
	}
	var out []layer.Volume
	for _, v := range set.Volumes {
		v.Anonymous, v.Fill = false, false
		switch mode {
		case "ro":
			v.ReadOnly = true
		case "rw":
			v.ReadOnly = false
		}
		out = append(out, v)
	}
	return out, nil
}
