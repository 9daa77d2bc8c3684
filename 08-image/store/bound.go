//go:build linux

package store

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

// Bound is the store's bound.
func (s *Store) Bound() int64 {
	if s.MaxImageSize > 0 {
		return s.MaxImageSize
	}
	return DefaultMaxImageSize
}

// size prints bytes as the flag takes them: 1MiB, 32GiB.
func FormatSize(n int64) string { return units.BytesSize(float64(n)) }

// budget is what an image's layers may still unpack to: the bound, less
// the files of the layers counted so far.
type Budget struct{ Max, Used int64 }

func NewBudget(max int64) *Budget { return &Budget{Max: max} }

// left is what the next layer may hold.
func (b *Budget) Left() int64 { return b.Max - b.Used }

// take counts n bytes of files, or refuses them when they would pass the
// bound; what names them for the error ("entry \"big\"", "layer …").
func (b *Budget) Take(n int64, what string) error {
	if b == nil {
		return nil
	}
	if n < 0 || n > b.Left() {
		return fmt.Errorf("%s (%s) takes the image's files over --max-image-size %s (%s before it): refused",
			what, FormatSize(n), FormatSize(b.Max), FormatSize(b.Used))
	}
	b.Used += n
	return nil
}
