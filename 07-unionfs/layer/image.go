//go:build linux

package layer

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"berth/07-unionfs/untar"
)

// An image folder (--image DIR) is the smallest thing that can be called an
// image before stage 08: layer tarballs and a file named "order" listing
// their file names one per line, base layer first (the order of an OCI
// manifest's "layers"). Each tarball is applied once into the store under
// its sha256 and shared by every container that uses it.

// OrderFile names the list of layers in an image folder.
const OrderFile = "order"

// ImportImage applies the layers of an image folder that the store does
// not have yet and returns their directories, top first (overlay's order).
func (s Store) ImportImage(dir string, opt untar.Options) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, OrderFile))
	if err != nil {
		return nil, fmt.Errorf("image %s: %w (an image folder lists its layer tarballs in %s, base first)", dir, err, OrderFile)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.Contains(line, "/") {
			return nil, fmt.Errorf("image %s/%s: %q: layer names are file names in the folder", dir, OrderFile, line)
		}
		names = append(names, line)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("image %s/%s lists no layers", dir, OrderFile)
	}
	if err := s.Init(); err != nil {
		return nil, err
	}
	var lowers []string
	for _, name := range names {
		d, err := s.importLayer(filepath.Join(dir, name), opt)
		if err != nil {
			return nil, err
		}
		lowers = append([]string{d}, lowers...)
	}
	return lowers, nil
}

func (s Store) importLayer(tarball string, opt untar.Options) (string, error) {
	digest, err := fileDigest(tarball)
	if err != nil {
		return "", err
	}
	dst := filepath.Join(s.Root, "sha256", digest)
	if _, err := os.Stat(dst); err == nil {
		return dst, nil // Apply renames into place only when complete
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return "", err
	}
	if _, err := untar.ApplyFile(tarball, dst, opt); err != nil {
		if errors.Is(err, os.ErrExist) { // another run applied it meanwhile
			return dst, nil
		}
		return "", fmt.Errorf("layer %s: %w", tarball, err)
	}
	return dst, nil
}

func fileDigest(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
