//go:build linux

package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"berth/08-image/image"
	"berth/08-image/store"
)

// workdirStep sets WORKDIR, and creates the directory when the image does
// not have it (a small layer), as docker does.
func (b *builder) workdirStep(ctx context.Context, st *stage, in instruction, key stepKey, cfg ocispec.ImageConfig, createdBy string) error {
	t, err := b.view(ctx, st)
	if err != nil {
		return err
	}
	dir, err := t.Resolve("/", cfg.WorkingDir)
	if err != nil {
		return in.errorf("%s: %v", cfg.WorkingDir, err)
	}
	if fst, _, ok, err := t.Stat(dir); err != nil {
		return err
	} else if ok && fst.Mode&unix.S_IFMT == unix.S_IFDIR {
		return b.step0(st, key, cfg, createdBy)
	} else if ok {
		return in.errorf("%s: not a directory in the image", cfg.WorkingDir)
	}
	if b.cached(st, key) {
		return nil
	}
	return b.stageLayer(t, func(sg *stager) error {
		_, err := sg.mkdirAll(dir)
		return err
	}, func(sg *stager) error {
		l, err := b.s.PutTree(sg.root)
		if err != nil {
			return err
		}
		return b.commit(st, key, cfg, createdBy, &l)
	})
}

// stageLayer stages a layer in a scratch directory of the data root (the
// same filesystem as the store), lets fill put files in it, then done
// store it. The scratch directory goes on every path.
func (b *builder) stageLayer(below image.View, fill func(*stager) error, done func(*stager) error) error {
	if err := b.s.Layers.Init(); err != nil {
		return err
	}
	work, err := os.MkdirTemp(b.s.Layers.Root, ".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	sg, err := newStager(work, below, b.s.Bound())
	if err != nil {
		return err
	}
	if err := fill(sg); err != nil {
		return err
	}
	if err := sg.finish(); err != nil {
		return err
	}
	return done(sg)
}

// copyStep runs COPY or ADD: sources from the context (or --from a stage
// or image), the destination resolved in the image, the layer staged.
func (b *builder) copyStep(ctx context.Context, st *stage, in instruction, x expander) error {
	flags, err := parseFlags(in, supported[in.cmd]...)
	if err != nil {
		return err
	}
	words, err := x.words(in, in.args)
	if err != nil {
		return err
	}
	if len(words) < 2 {
		return in.errorf("needs a source and a destination")
	}
	srcs, dest := words[:len(words)-1], words[len(words)-1]
	for _, s := range srcs {
		if strings.Contains(s, "://") || strings.HasPrefix(s, "git@") {
			return in.errorf("%s: URLs are not supported: a build here has no network (download it into the context first)", s)
		}
	}
	src, prefix := b.ctx, in.cmd+" "
	from, hasFrom := flags["from"]
	if hasFrom {
		if from, err = x.word(in, from); err != nil {
			return err
		}
		if src, err = b.fromSource(ctx, in, from); err != nil {
			return err
		}
		prefix += "--from=" + from + " "
	}
	below, err := b.view(ctx, st)
	if err != nil {
		return err
	}
	uid, gid := 0, 0
	chown, hasChown := flags["chown"]
	if hasChown {
		if chown, err = x.word(in, chown); err != nil {
			return err
		}
		if uid, gid, err = chownIDs(chown, below); err != nil {
			return in.errorf("%v", err)
		}
		prefix += "--chown=" + chown + " "
	}
	items, err := src.sources(in, srcs)
	if err != nil {
		return err
	}
	destDir := strings.HasSuffix(dest, "/") || dest == "." || dest == ".."
	if !path.IsAbs(dest) {
		base := st.cfg.Config.WorkingDir
		if base == "" {
			base = "/"
		}
		dest = path.Join(base, dest)
	}
	if len(items) > 1 && !destDir {
		return in.errorf("with more than one source file, the destination must be a directory and end with a /")
	}
	resolved, err := below.Resolve("/", dest)
	if err != nil {
		return in.errorf("%s: %v", dest, err)
	}
	if dst, _, ok, err := below.Stat(resolved); err != nil {
		return err
	} else if ok && dst.Mode&unix.S_IFMT == unix.S_IFDIR {
		destDir = true
	}
	kind := "multi"
	return b.stageLayer(below, func(sg *stager) error {
		sg.uid, sg.gid = uid, gid
		for i, it := range items {
			fst, real, _, err := src.view.Stat(it)
			if err != nil {
				return err
			}
			isDir := fst.Mode&unix.S_IFMT == unix.S_IFDIR
			switch {
			case isDir:
				kind = "dir"
				if _, err := sg.mkdirAll(resolved); err != nil {
					return err
				}
				// Its content, each entry tested against .dockerignore.
				if err := sg.copyChildren(src, it, resolved, func() error { return nil }); err != nil {
					return in.errorf("%v", err)
				}
			case in.cmd == "ADD" && fst.Mode&unix.S_IFMT == unix.S_IFREG && isArchive(real):
				kind = "archive"
				if !hasChown {
					sg.uid, sg.gid = -1, -1 // the archive's owners
				}
				err := sg.extract(real, resolved, i)
				sg.uid, sg.gid = uid, gid
				if err != nil {
					return in.errorf("%v", err)
				}
			default:
				kind = "file"
				target := resolved
				if destDir {
					target = path.Join(resolved, path.Base(it))
				}
				if err := sg.copyTree(src, it, target); err != nil {
					return in.errorf("%v", err)
				}
			}
		}
		if len(items) > 1 {
			kind = "multi"
		}
		return nil
	}, func(sg *stager) error {
		createdBy := st.nop1(fmt.Sprintf("%s%s:%s in %s", prefix, kind, sg.digest(), dest))
		key := b.key(st, in)
		key.Shell = st.ms.shell
		key.Copy = &copyKey{Kind: kind, Content: sg.digest(), Dest: dest, Chown: chown, From: from}
		if b.cached(st, key) {
			return nil
		}
		l, err := b.s.PutTree(sg.root)
		if err != nil {
			return err
		}
		return b.commit(st, key, st.cfg.Config, createdBy, &l)
	})
}

// fromSource is COPY --from's tree: an earlier stage (by name or number),
// or else an image of the store.
func (b *builder) fromSource(ctx context.Context, in instruction, from string) (copySource, error) {
	var img *store.Image
	found := false
	for i, st := range b.stages[:len(b.stages)-1] {
		if (st.def.name != "" && st.def.name == strings.ToLower(from)) || fmt.Sprint(i) == from {
			img, found = st.img, true
		}
	}
	if !found {
		var err error
		if img, err = b.s.Get(from); errors.Is(err, store.ErrNotFound) {
			return copySource{}, in.errorf("--from=%s: no stage of that name above, and no such image in the store", from)
		} else if err != nil {
			return copySource{}, err
		}
	}
	src := copySource{what: "stage " + from}
	if img != nil {
		dirs, err := b.s.Unpack(ctx, img)
		if err != nil {
			return src, err
		}
		src.view = image.View{Layers: dirs}
	}
	return src, nil
}
