//go:build linux

package image

import (
	"fmt"

	units "github.com/docker/go-units"
)

// An image's layers are hostile input: a gzip'd layer of a few megabytes
// can hold a file of terabytes of zeros, and a hundred layers of the size
// stage 07 allows each would still fill any disk. So an image has one
// bound, on the sum of its layers' files (the sizes of their regular
// files, what stage 07's Apply counts as it writes them), set by
// --max-image-size on every verb that unpacks or stores layers: pull,
// load, import, build, and run --image. Each layer is given what the
// layers below it left of the bound (07's ApplyOptions.MaxBytes is per
// layer), and the whole image is refused, and nothing of it kept, when
// they add up to more.

// DefaultMaxImageSize is the bound when no flag sets one: larger than the
// largest images in common use (CUDA and ML images reach 20 GiB), small
// enough to stop a bomb long before a full disk stops it. Lower it on a
// small disk.
const DefaultMaxImageSize int64 = 32 << 30

// maxImageSize is the store's bound.
func (s *Store) maxImageSize() int64 {
	if s.MaxImageSize > 0 {
		return s.MaxImageSize
	}
	return DefaultMaxImageSize
}

// size prints bytes as the flag takes them: 1MiB, 32GiB.
func size(n int64) string { return units.BytesSize(float64(n)) }

// budget is what an image's layers may still unpack to: the bound, less
// the files of the layers counted so far.
type budget struct{ max, used int64 }

func newBudget(max int64) *budget { return &budget{max: max} }

// left is what the next layer may hold.
func (b *budget) left() int64 { return b.max - b.used }

// take counts n bytes of files, or refuses them when they would pass the
// bound; what names them for the error ("entry \"big\"", "layer …").
func (b *budget) take(n int64, what string) error {
	if b == nil {
		return nil
	}
	if n < 0 || n > b.left() {
		return fmt.Errorf("%s (%s) takes the image's files over --max-image-size %s (%s before it): refused",
			what, size(n), size(b.max), size(b.used))
	}
	b.used += n
	return nil
}
