//go:build linux

package layer

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkMountUnmount times Store.Mount + Store.Unmount of a container
// layer on 1 and on 100 read-only layers: short links, the mount on its
// own thread, the umount. bench/parts/07-unionfs.sh runs it on tmpfs
// ($BERTH_BENCH_DIR); make bench collects the figures.
func BenchmarkMountUnmount(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("skipped: needs root to mount")
	}
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("layers=%d", n), func(b *testing.B) {
			base := os.Getenv("BERTH_BENCH_DIR")
			if base == "" {
				base = b.TempDir()
			}
			base, err := os.MkdirTemp(base, "mount-")
			if err != nil {
				b.Fatal(err)
			}
			defer os.RemoveAll(base)
			var lowers []string
			for i := 0; i < n; i++ {
				d := filepath.Join(base, "lower", fmt.Sprint(i))
				if err := os.MkdirAll(d, 0o755); err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(d, fmt.Sprint("f", i)), nil, 0o644); err != nil {
					b.Fatal(err)
				}
				lowers = append(lowers, d)
			}
			store := NewStore(filepath.Join(base, "data"))
			rec := &Record{ID: "bench", Driver: DriverOverlay, Lowers: lowers}
			if _, err := store.Create(rec, nil); err != nil {
				b.Fatal(err)
			}
			if err := store.Unmount("bench"); err != nil {
				b.Fatal(err)
			}
			defer store.Remove("bench")
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := store.Mount(rec); err != nil {
					b.Fatal(err)
				}
				if err := store.Unmount("bench"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOverlayProbe times what chooseDriver pays on every run: a
// probe mount (once per boot now), and reading the remembered answer
// (every other run).
func BenchmarkOverlayProbe(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("skipped: needs root to mount")
	}
	base := os.Getenv("BERTH_BENCH_DIR")
	if base == "" {
		base = b.TempDir()
	}
	root, err := os.MkdirTemp(base, "probe-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(root)
	b.Run("probe", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := probeOverlay(root, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("remembered", func(b *testing.B) {
		if _, err := overlayMounts(root); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			remembered, err := overlayMounts(root)
			if err != nil || !remembered {
				b.Fatal("not remembered", err)
			}
		}
	})
}
