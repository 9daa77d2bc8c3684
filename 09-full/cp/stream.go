//go:build linux

package cp

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"berth/07-unionfs/untar"
)

// MaxStreamBytes bounds what one `cp - CONTAINER:DEST` may write: the
// file contents of the tar stream, summed.
var MaxStreamBytes int64 = untar.DefaultMaxBytes

// CopyInTar extracts the tar stream r into dst, a directory in the
// container (docker cp - CONTAINER:DEST). The stream is hostile input, as
// a layer is: stage 07's untar.Apply extracts it first into a fresh
// private directory under scratch (on the host, 0700), with every rule of
// its own — names checked, no symlink followed, no chmod or chown through
// one, sizes and entry counts bounded, devices refused — and only then is
// the result copied into the container by the same handles as CopyIn.
// Two walls: the tar never names a path in the container, and the
// container never sees a half-checked entry.
func (r *Root) CopyInTar(stream io.Reader, dst string, archive bool, scratch string) error {
	fd, err := r.resolve(dst, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("destination %s must be a directory in the container: %w", dst, err)
	}
	defer unix.Close(fd)
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return fmt.Errorf("cp: scratch directory: %w", err)
	}
	tmp, err := os.MkdirTemp(scratch, "cp-")
	if err != nil {
		return fmt.Errorf("cp: scratch directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	x := filepath.Join(tmp, "x")
	opt := untar.Options{MaxBytes: MaxStreamBytes, Devices: untar.DevicesRefuse, Rootless: os.Geteuid() != 0}
	if _, err := untar.Apply(stream, x, opt); err != nil {
		return fmt.Errorf("the tar stream: %w", err)
	}
	return r.inChildren(x, fd, archive)
}

// followLink resolves p's last name, while it is a symlink, as the
// container would (-L): absolute targets from the container's root,
// relative ones from p's directory. Each step is looked up by resolve,
// in the root, so no target leads out of it.
func (r *Root) followLink(p string) (string, error) {
	p = path.Clean("/" + strings.TrimSuffix(p, "/."))
	buf := make([]byte, unix.PathMax)
	for i := 0; i < 40; i++ { // the kernel's MAXSYMLINKS
		dir, name, err := r.parent(p)
		if err != nil {
			return "", err
		}
		n, err := unix.Readlinkat(dir, name, buf)
		unix.Close(dir)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return p, nil // not a symlink (or missing: CopyOut says so)
		}
		if err != nil {
			return "", fmt.Errorf("readlink %s: %w", p, err)
		}
		t := string(buf[:n])
		if !path.IsAbs(t) {
			t = path.Join(path.Dir(p), t)
		}
		p = path.Clean("/" + t)
	}
	return "", fmt.Errorf("%s: %w", p, unix.ELOOP)
}
