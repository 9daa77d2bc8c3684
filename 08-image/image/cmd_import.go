//go:build linux

package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"berth/01-uts/spine"
	"berth/07-unionfs/layer"
)

func importCommand() *cobra.Command {
	var (
		roots   dataRoot
		cmdArgs []string
		changes []string
	)
	cmd := &cobra.Command{
		Use:   "import ROOTFS [NAME]",
		Short: "Make a one-layer image of a root filesystem: a directory, or a tarball (plain or gzip; '-' for stdin)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			s, err := roots.store()
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 2 {
				if name, err = NormalizeName(args[1]); err != nil {
					return err
				}
			}
			// --change: Dockerfile instructions on the config (build_config.go),
			// checked before anything is stored.
			config := ocispec.ImageConfig{Cmd: cmdArgs}
			if err := ApplyChanges(&config, changes); err != nil {
				return err
			}
			src := args[0]
			// Ctrl-C ends the import: the half-stored layer is removed.
			ctx, stop := interruptible(cmd)
			defer stop()
			release, err := s.Hold()
			if err != nil {
				return err
			}
			defer release()
			added := &newBlobs{s: s}
			defer func() { // before release: a failed import stores nothing
				if err == nil {
					return
				}
				added.remove()
				if ctx.Err() != nil {
					err = spine.Exitf(130, "import interrupted: nothing was stored")
				}
			}()
			if err := added.snapshot(); err != nil {
				return err
			}
			l, err := importLayer(ctx, s, src)
			if err != nil {
				return err
			}
			added.note(l.Blob.Digest)
			if err := ctx.Err(); err != nil {
				return err
			}
			now := time.Now().UTC()
			cfg := ocispec.Image{
				Created: &now,
				Config:  config,
				History: []ocispec.History{{Created: &now, CreatedBy: "berth import " + src, Comment: "imported"}},
			}
			img, err := s.Commit(name, cfg, []Layer{l})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), img.ID())
			return nil
		},
	}
	roots.addFlag(cmd)
	cmd.Flags().StringArrayVar(&cmdArgs, "cmd", nil, "the image's CMD, one argument per flag (--cmd sh), when run is given no command")
	cmd.Flags().StringArrayVarP(&changes, "change", "c", nil, `apply a Dockerfile instruction to the config: CMD ["sh"], ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR (repeatable)`)
	return cmd
}

// importLayer stores src as a layer: a directory's tree, or a tarball,
// plain or gzip'd, which is read through tar as it streams to the store,
// so that what is not a tar, or names a path outside the root, stops the
// import with its reason before the blob is complete (and PutBlob removes
// it); nothing is left for run to trip on.
func importLayer(ctx context.Context, s *Store, src string) (Layer, error) {
	if st, err := os.Stat(src); err == nil && st.IsDir() {
		// PutTree, through the interruptible reader.
		pr, pw := io.Pipe()
		go func() {
			_, err := layer.WriteTree(pw, src)
			pw.CloseWithError(err)
		}()
		defer pr.CloseWithError(io.ErrClosedPipe) // stops WriteTree if PutLayer gave up
		return s.PutLayer(readerUntil(ctx, pr))
	}
	f := os.Stdin
	if src != "-" {
		var err error
		if f, err = os.Open(src); err != nil {
			return Layer{}, err
		}
		defer f.Close()
	}
	plain, err := decompressed(readerUntil(ctx, f))
	if err != nil {
		return Layer{}, fmt.Errorf("import %s: %w", src, err)
	}
	checked := &checkedTar{src: plain}
	checked.tr = tar.NewReader(readerFunc(checked.record))
	l, err := s.PutLayer(checked)
	if err != nil && checked.err != nil {
		return Layer{}, fmt.Errorf("import %s: %w", src, checked.err)
	}
	return l, err
}

// checkedTar passes a tar stream through unchanged, reading it with
// archive/tar as it goes: a read fails when the stream is no tar, is cut
// short, or has an entry unpack would refuse (an absolute name, a "..",
// a hard link to such a name, a type no layer holds). A layer is applied
// only at run, long after import; this makes import refuse what run would.
type checkedTar struct {
	src     io.Reader
	tr      *tar.Reader
	buf     bytes.Buffer // what tr read from src, not yet passed on
	n       int64        // bytes read from src
	srcErr  error        // src's last error
	entries int
	inEntry bool
	done    bool  // the end of the archive: the rest (padding) passes as it is
	err     error // why the stream is refused; also what Read returns
	scratch [32 << 10]byte
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// record is tr's source: src, with every byte kept to be passed on.
func (c *checkedTar) record(p []byte) (int, error) {
	n, err := c.src.Read(p)
	c.buf.Write(p[:n])
	c.n += int64(n)
	if err != nil {
		c.srcErr = err
	}
	return n, err
}

func (c *checkedTar) Read(p []byte) (int, error) {
	for c.buf.Len() == 0 && c.err == nil {
		if c.done {
			n, err := c.src.Read(p)
			if err != nil && err != io.EOF {
				c.err = fmt.Errorf("read: %w", err)
			}
			return n, err
		}
		c.step()
	}
	if c.buf.Len() > 0 {
		return c.buf.Read(p)
	}
	return 0, c.err
}

// step moves tr on by a header or a piece of an entry's content.
func (c *checkedTar) step() {
	if c.inEntry {
		_, err := c.tr.Read(c.scratch[:])
		switch {
		case err == io.EOF:
			c.inEntry = false
		case err != nil:
			c.err = c.readError(err)
		}
		return
	}
	hdr, err := c.tr.Next()
	switch {
	case err == io.EOF && c.n == 0:
		c.err = errors.New("empty input: not a tar archive")
	case err == io.EOF:
		c.done = true
	case err != nil && c.entries == 0 && (errors.Is(err, tar.ErrHeader) ||
		errors.Is(err, io.ErrUnexpectedEOF) && c.srcErr == io.EOF && c.n < tarBlock):
		c.err = errors.New("not a tar archive (a tarball of a root filesystem, plain or gzip'd, or a directory)")
	case err != nil:
		c.err = c.readError(err)
	default:
		c.entries++
		c.inEntry = true
		c.err = checkLayerEntry(hdr)
	}
}

func (c *checkedTar) readError(err error) error {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("the tarball ends in the middle of entry %d: is it truncated?", c.entries)
	case errors.Is(err, tar.ErrHeader):
		return fmt.Errorf("the header after entry %d is damaged: %v", c.entries, err)
	}
	return fmt.Errorf("read tarball after %d entries: %w", c.entries, err)
}

// checkLayerEntry refuses an entry that stage 07's unpack would refuse for
// its name or its type, with the same reasons.
func checkLayerEntry(hdr *tar.Header) error {
	name, err := entryName(hdr.Name)
	if err != nil {
		return fmt.Errorf("tarball entry %w", err)
	}
	switch hdr.Typeflag {
	case tar.TypeDir, tar.TypeReg, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	case tar.TypeLink:
		if _, err := entryName(hdr.Linkname); err != nil {
			return fmt.Errorf("tarball entry %q: hard link target %w", hdr.Name, err)
		}
	default:
		return fmt.Errorf("tarball entry %q has type %q: a layer holds files, directories, links, devices and FIFOs", hdr.Name, hdr.Typeflag)
	}
	if name == "." && hdr.Typeflag != tar.TypeDir {
		return fmt.Errorf("tarball entry %q: the root of a layer must be a directory", hdr.Name)
	}
	return nil
}
