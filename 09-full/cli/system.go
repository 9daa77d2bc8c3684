//go:build linux

package cli

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	units "github.com/docker/go-units"
	digest "github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"berth/07-unionfs/layer"
	imagestore "berth/08-image/store"
	"berth/09-full/engine"
	"berth/09-full/imageverbs"
	"berth/09-full/netvol"
	"berth/09-full/store"
	"berth/09-full/volume"
)

// systemCommand is `berth system`: df and prune, Docker's, over berth's
// one store (images, containers, volumes).
func (a *app) systemCommand() *cobra.Command {
	group := &cobra.Command{Use: "system", Short: "Manage berth: disk usage, prune"}
	group.AddCommand(a.dfCommand(), a.systemPruneCommand())
	return group
}

// usage is what system df counts, and what prune would take.
type diskUsage struct {
	images, imagesActive       int
	imageSize, imageReclaim    int64
	containers, containersLive int
	containerSize, ctrReclaim  int64
	volumes, volumesUsed       int
	volumeSize, volumeReclaim  int64
}

func (a *app) dfCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "df",
		Short: "Show berth's disk usage: images, containers, local volumes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.Engine()
			if err != nil {
				return err
			}
			u, err := measure(e)
			if err != nil {
				return err
			}
			// Docker's table: tabwriter, minimum width 10, padding 3.
			w := tabwriter.NewWriter(a.Stdout, 10, 1, 3, ' ', 0)
			fmt.Fprintln(w, "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE")
			fmt.Fprintf(w, "Images\t%d\t%d\t%s\t%s\n", u.images, u.imagesActive, units.HumanSize(float64(u.imageSize)), reclaimable(u.imageReclaim, u.imageSize))
			fmt.Fprintf(w, "Containers\t%d\t%d\t%s\t%s\n", u.containers, u.containersLive, units.HumanSize(float64(u.containerSize)), reclaimable(u.ctrReclaim, u.containerSize))
			fmt.Fprintf(w, "Local Volumes\t%d\t%d\t%s\t%s\n", u.volumes, u.volumesUsed, units.HumanSize(float64(u.volumeSize)), reclaimable(u.volumeReclaim, u.volumeSize))
			// berth's build cache is the builds' intermediate images,
			// counted with the images.
			fmt.Fprintf(w, "Build Cache\t0\t0\t0B\t0B\n")
			return w.Flush()
		},
	}
}

// reclaimable is docker's "1.08MB (50%)".
func reclaimable(n, of int64) string {
	if of == 0 {
		return units.HumanSize(float64(n))
	}
	return fmt.Sprintf("%s (%d%%)", units.HumanSize(float64(n)), 100*n/of)
}

// measure counts the store. An image's size is its blobs as stored, a
// blob shared by two images counted once; it is reclaimable when no
// image a container was made from reaches it. A container's size is its
// own layer (what it wrote); a volume's, its files; a volume is active
// while any container, running or not, lists it.
func measure(e *engine.Engine) (diskUsage, error) {
	var u diskUsage
	recs, err := e.Store.List()
	if err != nil {
		return u, err
	}
	usedImages := map[string]bool{}
	usedVolumes := map[string]bool{}
	for _, r := range recs {
		usedImages[r.Image.ID] = true
		size := containerSize(e.DataRoot, r.ID)
		u.containers++
		u.containerSize += size
		if st, err := e.Store.View(r.ID); err == nil && st.Running() {
			u.containersLive++
		} else {
			u.ctrReclaim += size
		}
		if set, err := engine.DecodeSettings(r.Settings); err == nil {
			for _, v := range set.Volumes {
				switch {
				case v.Name != "":
					usedVolumes[v.Name] = true
				case v.Anonymous:
					usedVolumes[filepath.Base(filepath.Dir(v.Source))] = true
				}
			}
		}
	}
	imgs, err := imagestore.NewStore(e.DataRoot).List()
	if err != nil {
		return u, err
	}
	blobs := map[digest.Digest]int64{}
	active := map[digest.Digest]bool{}
	ids := map[digest.Digest]bool{}
	for _, img := range imgs {
		if !ids[img.ID()] {
			ids[img.ID()] = true
			u.images++
			if usedImages[img.ID().String()] {
				u.imagesActive++
			}
		}
		ds := []ocispecDescriptor{{img.Descriptor.Digest, img.Descriptor.Size}, {img.Manifest.Config.Digest, img.Manifest.Config.Size}}
		for _, l := range img.Manifest.Layers {
			ds = append(ds, ocispecDescriptor{l.Digest, l.Size})
		}
		for _, d := range ds {
			blobs[d.digest] = d.size
			if usedImages[img.ID().String()] {
				active[d.digest] = true
			}
		}
	}
	for d, n := range blobs {
		u.imageSize += n
		if !active[d] {
			u.imageReclaim += n
		}
	}
	// Every local volume, named or anonymous, as docker's: one store.
	vs := volume.New(e.DataRoot)
	vols, err := vs.List()
	if err != nil {
		return u, err
	}
	for _, v := range vols {
		n := treeSize(vs.Data(v.Name)) // its files, not berth's volume.json
		u.volumes++
		u.volumeSize += n
		if usedVolumes[v.Name] {
			u.volumesUsed++
		} else {
			u.volumeReclaim += n
		}
	}
	return u, nil
}

type ocispecDescriptor struct {
	digest digest.Digest
	size   int64
}

// containerSize is what a container wrote: its layer's diff (with the
// copy driver, which has no upper dir, the whole tree it copied).
func containerSize(dataRoot, id string) int64 {
	return treeSize(filepath.Join(layer.NewStore(dataRoot).Dir(id), "diff"))
}

// treeSize adds up the sizes of the regular files under dir, following
// no symlink (WalkDir does not); a tree it cannot read counts what it
// could.
func treeSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// anonymousVolumes are the volumes of -v /path: <data-root>/volumes/ID,
// an ID of 64 hex digits (engine.AnonymousVolumeDir).
func anonymousVolumes(dataRoot string) ([]string, error) {
	dir := filepath.Join(dataRoot, "volumes")
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, en := range entries {
		if en.IsDir() && len(en.Name()) == 64 && imagestore.IsHexPrefix(en.Name()) {
			out = append(out, filepath.Join(dir, en.Name()))
		}
	}
	return out, nil
}

func (a *app) systemPruneCommand() *cobra.Command {
	var force, all, volumes bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove stopped containers, unused networks, dangling images (-a: every unused image) and, with --volumes, unused anonymous volumes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			what := []string{"all stopped containers", "all networks not used by at least one container"}
			if volumes {
				what = append(what, "all anonymous volumes not used by at least one container")
			}
			if all {
				what = append(what, "all images without at least one container associated to them")
			} else {
				what = append(what, "all dangling images")
			}
			if !force && !a.Confirm("WARNING! This will remove:\n  - "+strings.Join(what, "\n  - ")+"\n") {
				return nil
			}
			e, err := a.Engine()
			if err != nil {
				return err
			}
			ids, total := a.pruneContainers(e)
			a.Section("Deleted Containers:", ids)
			nets, err := netvol.PruneNetworks(e)
			a.Section("Deleted Networks:", nets)
			if err != nil {
				return err
			}
			if volumes {
				gone, n, err := pruneVolumes(e)
				a.Section("Deleted Volumes:", gone)
				total += n
				if err != nil {
					return err
				}
			}
			lines, n, err := imageverbs.Prune(a.App, cmd.Context(), all)
			a.Section("Deleted Images:", lines)
			total += n
			fmt.Fprintf(a.Stdout, "Total reclaimed space: %s\n", units.HumanSize(float64(total)))
			return err
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all unused images, not just dangling ones")
	cmd.Flags().BoolVar(&volumes, "volumes", false, "prune anonymous volumes")
	return cmd
}

// section prints one of prune's lists, as docker does: a title, the
// items, a blank line; nothing when empty.
// pruneContainers removes every container that does not run (exited,
// dead, or created and without a monitor waiting for start), and returns
// their ids and what their layers held. An error on one is said and the
// others go on.
func (a *app) pruneContainers(e *engine.Engine) ([]string, int64) {
	recs, err := e.Store.List()
	if err != nil {
		fmt.Fprintf(a.Stderr, "berth: %v\n", err)
		return nil, 0
	}
	var deleted []string
	var total int64
	for _, r := range recs {
		st, err := e.Store.View(r.ID)
		if err != nil || st.Running() || st.Status == store.Restarting || (st.Status == store.Created && st.MonitorAlive()) {
			continue
		}
		size := containerSize(e.DataRoot, r.ID)
		if err := e.Remove(r.ID, false, false); err != nil {
			fmt.Fprintf(a.Stderr, "berth: %v\n", err)
			continue
		}
		deleted = append(deleted, r.ID)
		total += size
	}
	return deleted, total
}

// pruneVolumes removes the anonymous volumes no container lists.
//
// The order of the two reads is the fix of a race with create: a
// container's record, which names its volume, is always written before
// the volume's directory is made (create writes the record; the monitor's
// create makes and seeds the directory, 07-unionfs/layer seedVolume).
// So the directories are listed first and the records read after: a
// directory in the list was made before the list, so its record was
// written before it and is read. Records first, then directories, let a
// create slip between the two: its record unseen, its fresh directory
// listed, and removed under the container that was filling it.
func pruneVolumes(e *engine.Engine) ([]string, int64, error) {
	vols, err := anonymousVolumes(e.DataRoot)
	if err != nil {
		return nil, 0, err
	}
	pruneVolumesGap()
	recs, err := e.Store.List()
	if err != nil {
		return nil, 0, err
	}
	used := map[string]bool{}
	for _, r := range recs {
		set, err := engine.DecodeSettings(r.Settings)
		if err != nil {
			return nil, 0, err // a record unread: its volumes may be in use
		}
		for _, v := range set.Volumes {
			if v.Anonymous {
				used[filepath.Dir(v.Source)] = true
			}
		}
	}
	var gone []string
	var total int64
	for _, v := range vols {
		if used[v] {
			continue
		}
		n := treeSize(filepath.Join(v, "_data")) // its files, not berth's volume.json
		if err := os.RemoveAll(v); err != nil {
			return gone, total, fmt.Errorf("remove volume %s: %w", v, err)
		}
		gone = append(gone, filepath.Base(v))
		total += n
	}
	return gone, total, nil
}

// pruneVolumesGap runs between pruneVolumes' two reads: nothing, but a
// test's concurrent create, there for certain rather than by luck.
var pruneVolumesGap = func() {}
