//go:build linux

package inside

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"berth/07-unionfs/layer"
	"berth/09-full/cp"
	"berth/09-full/engine"
	"berth/09-full/store"

	"berth/09-full/clikit"
)

// cpCommand is `berth cp CONTAINER:SRC DEST` and `berth cp SRC
// CONTAINER:DEST`, for a container running or not, through package cp's
// handles.
func (a *app) cpCommand() *cobra.Command {
	var archive, follow bool
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH\n  berth cp [OPTIONS] SRC_PATH CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcRef, srcPath, srcIn := splitCp(args[0])
			dstRef, dstPath, dstIn := splitCp(args[1])
			switch {
			case srcIn && dstIn:
				return clikit.Usage("copying between containers is not supported")
			case !srcIn && !dstIn:
				return clikit.Usage("must specify at least one container source")
			}
			ref := srcRef
			if dstIn {
				ref = dstRef
			}
			e, err := a.Engine()
			if err != nil {
				return err
			}
			rec, err := e.Store.Get(ref)
			if err != nil {
				return err
			}
			root, release, err := openCpRoot(e, rec)
			if err != nil {
				return err
			}
			defer release()
			if root == nil {
				return nil // copied by this verb's second run (cpInUserns)
			}
			root.FollowLink = follow
			root.Warn = func(format string, args ...any) { fmt.Fprintf(a.Stderr, "berth: "+format+"\n", args...) }
			// Docker's events: archive-path for a copy out, extract-to-dir in.
			switch {
			case srcIn && dstPath == "-":
				err = root.CopyOutTar(srcPath, a.Stdout)
			case srcIn:
				err = root.CopyOut(srcPath, dstPath)
			case srcPath == "-":
				// Extracted on the host first, beside the layers: the
				// same filesystem, private to berth (cp.CopyInTar).
				err = root.CopyInTar(cmd.InOrStdin(), dstPath, archive, filepath.Join(e.DataRoot, "tmp"))
			default:
				err = root.CopyIn(srcPath, dstPath, archive)
			}
			if err == nil {
				e.Event(rec, map[bool]string{true: "archive-path", false: "extract-to-dir"}[srcIn], nil)
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&archive, "archive", "a", false, "archive mode (copy all uid/gid information)")
	cmd.Flags().BoolVarP(&follow, "follow-link", "L", false, "always follow symbol link in SRC_PATH")
	return cmd
}

// splitCp reads CONTAINER:PATH; a path with a "/" before any ":" (./a:b)
// is a local path, as docker reads it.
func splitCp(arg string) (ref, p string, inContainer bool) {
	i := strings.Index(arg, ":")
	if i <= 0 || strings.Contains(arg[:i], "/") {
		return "", arg, false
	}
	return arg[:i], arg[i+1:], true
}

// openCpRoot opens the container's root: a running (or paused, or created
// and waiting) container's as its init sees it; a stopped one's as a
// detached overlay of its layers (layer.Store.OpenDetached), under the
// container's lock, so that it does not start while we copy — two
// overlays over one upper directory would each miss the other's writes.
func openCpRoot(e *engine.Engine, rec *store.Record) (*cp.Root, func(), error) {
	st, err := e.Store.View(rec.ID)
	if err != nil {
		return nil, nil, err
	}
	if st.Running() || st.Status == store.Created && st.Pid > 0 {
		root, err := cp.OpenRoot(st.Pid, rec.Spec)
		if err != nil {
			return nil, nil, err
		}
		return root, root.Close, nil
	}
	inside := cpInsideUserns()
	unlock := func() {}
	if !inside { // the second run's first holds the lock for it
		if unlock, err = e.Store.Lock(rec.ID); err != nil {
			return nil, nil, err
		}
	}
	if st, err = e.Store.View(rec.ID); err != nil || st.Running() {
		unlock()
		if err == nil {
			err = fmt.Errorf("container %s started meanwhile: run berth cp again", rec.ID[:12])
		}
		return nil, nil, err
	}
	cfg, err := engine.ConfigOf(rec)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	layers := layer.NewStore(e.DataRoot)
	lrec, err := layers.Load(rec.ID)
	if len(cfg.Settings.Layers) == 0 || err != nil {
		unlock()
		return nil, nil, fmt.Errorf("container %s is not running and has no layers of berth's to copy from", rec.ID[:12])
	}
	if lrec.Rootless && lrec.Driver != layer.DriverCopy && !inside {
		err := cpInUserns(e, layers, lrec)
		unlock()
		return nil, func() {}, err
	}
	fd, err := layers.OpenDetached(lrec)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	spec := rec.Spec
	if inside {
		spec = nil // the ids here are the container's already: no map
	}
	root := cp.NewRoot(fd, spec)
	return root, func() { root.Close(); unlock() }, nil
}
