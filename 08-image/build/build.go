//go:build linux

// Package build makes an image from a Dockerfile as docker's classic
// builder does: a step per instruction, a container per RUN (this binary's
// own run verb, without network), a layer per COPY or ADD, the build
// cache keyed on the step. It needs the image store and the image-root
// view, not the registry: a build uses no network. Chapter:
// docs/08-build.md.
package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/08-image/image"
	"berth/08-image/store"
)

// Build makes an image from a Dockerfile as docker's classic builder did:
// each instruction is a step that commits an image on the previous step's
// image (the intermediate images, unnamed). A metadata step (ENV, CMD,
// LABEL...) changes only the config and adds a history entry marked
// empty_layer; RUN runs its command in a container on the previous image
// (this very binary's run verb, without network) and commits the
// container's layer; COPY and ADD commit a layer of the copied files.
// Every step first looks for an image made before from the same parent by
// the same instruction (for COPY, the same content): the build cache.

// Options are docker build's.
type Options struct {
	Context    string
	Dockerfile string   // "": Dockerfile in the context
	Tags       []string // names for the result
	BuildArgs  []string // NAME=value, or NAME for the value in the environment
	NoCache    bool
	Exe        string // the binary whose run verb runs RUN steps ("": this one)
	// RunVerb is the words of that verb on Exe's command line (nil: "run").
	// Stage 09's berth has a run of Docker's shape; it mounts stage 08's
	// run as a hidden verb and names it here.
	RunVerb   []string
	StateRoot string // the state root of the RUN containers
	Out, Err  io.Writer
	// Pull fetches a FROM image the store lacks, printing its lines on
	// Out (nil: the build uses no network, and such a FROM fails).
	Pull func(ctx context.Context, ref string) (*store.Image, error)
}

type builder struct {
	s      *store.Store
	o      Options
	df     *dockerfile
	ctx    copySource
	args   map[string]string // --build-arg
	used   map[string]bool
	meta   envList // ARGs before the first FROM
	stages []*stage
	step   int
}

// stage is the state of one FROM ... section while it builds.
type stage struct {
	def    stageDef
	img    *store.Image // the last step's image; nil on scratch before any step
	cfg    ocispec.Image
	layers []store.Layer
	args   envList // ARGs declared in this stage, with their values
	ms     metaState
	// docker is what Docker's config has beside the OCI fields (the
	// HEALTHCHECK), inherited from the base image like the rest.
	docker dockerspec.DockerOCIImageConfigExt
}

// Build builds the Dockerfile and names the result.
func Build(ctx context.Context, s *store.Store, o Options) (*store.Image, error) {
	if o.Dockerfile == "" {
		o.Dockerfile = filepath.Join(o.Context, "Dockerfile")
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Err == nil {
		o.Err = io.Discard
	}
	df, err := readDockerfile(o.Dockerfile)
	if err != nil {
		return nil, err
	}
	src, err := openContext(o.Context)
	if err != nil {
		return nil, err
	}
	b := &builder{s: s, o: o, df: df, ctx: src, args: map[string]string{}, used: map[string]bool{}}
	for _, kv := range o.BuildArgs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			if v, ok = os.LookupEnv(k); !ok {
				continue // docker build --build-arg NAME: the environment's, if set
			}
		}
		b.args[k] = v
	}
	release, err := s.Hold(ctx) // the new blobs are not named until the end
	if err != nil {
		return nil, err
	}
	defer release()
	b.collectBuilds()

	for _, in := range df.metaArgs {
		b.printStep(in)
		if err := b.declareArgs(in, newExpander(df.escape, b.meta), &b.meta); err != nil {
			return nil, err
		}
	}
	for _, def := range df.stages {
		st, err := b.from(ctx, def)
		if err != nil {
			return nil, err
		}
		b.stages = append(b.stages, st)
		for _, in := range def.instrs {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			b.printStep(in)
			if err := b.dispatch(ctx, st, in); err != nil {
				return nil, err
			}
		}
	}
	img := b.stages[len(b.stages)-1].img
	if img == nil {
		return nil, errors.New("no image was generated: is the Dockerfile only FROM scratch?")
	}
	var unused []string
	for k := range b.args {
		if !b.used[k] {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		fmt.Fprintf(o.Err, "[Warning] One or more build-args %v were not consumed\n", unused)
	}
	fmt.Fprintf(o.Out, "Successfully built %s\n", img.ShortID())
	for _, t := range o.Tags {
		if err := s.Tag(t, img.Descriptor); err != nil {
			return nil, err
		}
		name, _ := store.NormalizeName(t)
		img.Name = name
		fmt.Fprintf(o.Out, "Successfully tagged %s\n", store.FamiliarName(name))
	}
	return img, nil
}

func (b *builder) printStep(in instruction) {
	b.step++
	fmt.Fprintf(b.o.Out, "Step %d/%d : %s\n", b.step, b.df.steps, in.original)
}

// from starts a stage: FROM scratch, FROM an earlier stage, or FROM an
// image of the store, pulled first if the store lacks it and the build
// may pull (Options.Pull; stage 08's build pulls nothing).
func (b *builder) from(ctx context.Context, def stageDef) (*stage, error) {
	in := def.from
	b.printStep(in)
	ref, err := newExpander(b.df.escape, b.meta).word(in, in.args[0])
	if err != nil {
		return nil, err
	}
	st := &stage{def: def, ms: metaState{shell: defaultShell}}
	if ref == "scratch" {
		return st, nil
	}
	var img *store.Image
	for _, earlier := range b.stages {
		if earlier.def.name != "" && earlier.def.name == strings.ToLower(ref) {
			if img = earlier.img; img == nil {
				return st, nil // an empty scratch stage
			}
		}
	}
	if img == nil {
		img, err = b.s.Get(ref)
		if errors.Is(err, store.ErrNotFound) && b.o.Pull != nil {
			img, err = b.o.Pull(ctx, ref) // docker's classic builder pulls it
		}
		if errors.Is(err, store.ErrNotFound) {
			return nil, in.errorf("%s: no such image in the store %s: pull, load or import it first (a build uses no network)", ref, b.s.Root)
		} else if err != nil {
			return nil, in.errorf("%s: %v", ref, err)
		}
	}
	// Unpacked here, as docker's FROM does, so that an image over
	// --max-image-size (or a damaged one) stops the build at its FROM.
	if _, err := b.s.Unpack(ctx, img); err != nil {
		return nil, in.errorf("%s: %v", ref, err)
	}
	st.use(img)
	if len(st.cfg.History) == 0 { // a hand-made image: one entry per layer
		for range st.layers {
			st.cfg.History = append(st.cfg.History, ocispec.History{Created: st.cfg.Created})
		}
	}
	fmt.Fprintf(b.o.Out, " ---> %s\n", img.ShortID())
	return st, nil
}

// use makes img the stage's current image.
func (st *stage) use(img *store.Image) {
	st.img, st.cfg, st.layers, st.docker = img, img.Config, nil, img.Docker
	for i, l := range img.Manifest.Layers {
		st.layers = append(st.layers, store.Layer{Blob: l, DiffID: img.Config.RootFS.DiffIDs[i]})
	}
}

// nop is how docker's history writes a step that ran no command: the
// shell, then "#(nop)", then the instruction (two spaces for metadata).
func (st *stage) nop(text string) string {
	return strings.Join(st.ms.shell, " ") + " #(nop)  " + text
}

func (st *stage) nop1(text string) string {
	return strings.Join(st.ms.shell, " ") + " #(nop) " + text
}

// expander: the stage's ARGs, then its ENV, which wins over an ARG of the
// same name, as in docker.
func (b *builder) expander(st *stage) expander {
	env := append(append(envList{}, st.args...), st.cfg.Config.Env...)
	return newExpander(b.df.escape, env)
}

func (b *builder) dispatch(ctx context.Context, st *stage, in instruction) error {
	x := b.expander(st)
	switch in.cmd {
	case "ARG":
		if err := b.declareArgs(in, x, &st.args); err != nil {
			return err
		}
		return b.step0(st, b.metaKey(st, in, nil, st.cfg.Config), st.cfg.Config, st.nop("ARG "+strings.Join(in.args, " ")))
	case "RUN":
		return b.runStep(ctx, st, in)
	case "COPY", "ADD":
		return b.copyStep(ctx, st, in, x)
	case "HEALTHCHECK":
		hc, err := healthcheck(in)
		if err != nil {
			return err
		}
		// Committed with the next step0 (or found in the cache: use
		// takes it from the cached image then).
		st.docker.Healthcheck = hc
		return b.step0(st, b.metaKey(st, in, nil, st.cfg.Config), st.cfg.Config, st.nop(healthText(hc)))
	case "WORKDIR":
		cfg := st.cfg.Config
		text, err := applyMeta(&cfg, in, x, &st.ms)
		if err != nil {
			return err
		}
		return b.workdirStep(ctx, st, in, b.metaKey(st, in, &x, cfg), cfg, st.nop1(text))
	}
	cfg := st.cfg.Config
	text, err := applyMeta(&cfg, in, x, &st.ms)
	if err != nil {
		return err
	}
	return b.step0(st, b.metaKey(st, in, &x, cfg), cfg, st.nop(text))
}

// declareArgs reads ARG NAME[=default]...: the value is --build-arg's if
// given, else the default, else (in a stage) the value of the ARG of that
// name before FROM. An ARG with no value is declared and stays unset.
func (b *builder) declareArgs(in instruction, x expander, into *envList) error {
	for _, w := range in.args {
		k, def, hasDef := strings.Cut(w, "=")
		if k == "" {
			return in.errorf("%q: needs a name", w)
		}
		if hasDef {
			var err error
			if def, err = x.word(in, def); err != nil {
				return err
			}
		}
		v, ok := b.args[k]
		switch {
		case ok:
			b.used[k] = true
		case hasDef:
			v, ok = def, true
		case into != &b.meta:
			v, ok = b.meta.Get(k)
		}
		if ok {
			*into = append(*into, k+"="+v)
		}
	}
	return nil
}

// step0 commits a metadata step: the config changes, no layer.
func (b *builder) step0(st *stage, key stepKey, cfg ocispec.ImageConfig, createdBy string) error {
	if b.cached(st, key) {
		return nil
	}
	return b.commit(st, key, cfg, createdBy, nil)
}

// commit writes the step's image: the stage's config with cfg and a new
// history entry, its layers plus l (if any); unnamed, as docker's
// intermediate images are.
func (b *builder) commit(st *stage, key stepKey, cfg ocispec.ImageConfig, createdBy string, l *store.Layer) error {
	now := time.Now().UTC()
	img := st.cfg
	img.Config, img.Created = cfg, &now
	img.History = append(slices.Clone(st.cfg.History), ocispec.History{Created: &now, CreatedBy: createdBy, EmptyLayer: l == nil})
	layers := slices.Clone(st.layers)
	if l != nil {
		layers = append(layers, *l)
	}
	out, err := b.s.CommitDocker("", img, st.docker, layers)
	if err != nil {
		return err
	}
	if err := b.remember(key, out); err != nil {
		return err
	}
	st.use(out)
	fmt.Fprintf(b.o.Out, " ---> %s\n", out.ShortID())
	return nil
}

// tree is the stage's current image as a read-only view.
func (b *builder) view(ctx context.Context, st *stage) (image.View, error) {
	if st.img == nil {
		return image.View{}, nil
	}
	dirs, files, err := b.s.UnpackCounted(ctx, st.img)
	return image.View{Layers: dirs, Files: files}, err
}

// Intermediate reports whether img is one of a build's intermediate
// images: unnamed, and the parent of another image (its history and
// layers begin another's). images hides them, as docker images does
// without -a.
func Intermediate(img *store.Image, all []*store.Image) bool {
	if img.Name != "" || len(img.Config.History) == 0 {
		return false
	}
	for _, o := range all {
		if o.ID() != img.ID() && IsParent(img, o) {
			return true
		}
	}
	return false
}

// IsParent: child's history and layers start with parent's, and go
// further (an image built FROM parent, or a later step of its build).
func IsParent(parent, child *store.Image) bool {
	ph, ch := parent.Config.History, child.Config.History
	pl, cl := parent.Config.RootFS.DiffIDs, child.Config.RootFS.DiffIDs
	if len(ch) <= len(ph) || len(cl) < len(pl) || !slices.Equal(pl, cl[:len(pl)]) {
		return false
	}
	for i := range ph {
		a, b := ph[i], ch[i]
		if a.CreatedBy != b.CreatedBy || a.EmptyLayer != b.EmptyLayer || a.Comment != b.Comment ||
			(a.Created == nil) != (b.Created == nil) || (a.Created != nil && !a.Created.Equal(*b.Created)) {
			return false
		}
	}
	return true
}
