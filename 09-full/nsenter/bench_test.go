//go:build linux

package nsenter_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"berth/01-uts/spine/sealexe"
	"berth/internal/testenv"
)

// BenchmarkSeal is the cost of the CVE-2019-5736 defence per exec: one
// sealed memfd copy of a binary the size of berth's. The largest stage
// binary stands in for it (berth will hold every stage), else this test
// binary. make build first for the realistic size.
func BenchmarkSeal(b *testing.B) {
	src := "/proc/self/exe"
	for _, dir := range []string{os.Getenv("BERTH_BIN"), filepath.Join(testenv.RepoRoot(), "bin")} {
		if p := filepath.Join(dir, "08-image"); dir != "" {
			if _, err := os.Stat(p); err == nil {
				src = p
				break
			}
		}
	}
	st, err := os.Stat(src)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("sealing %s (%.1f MiB)", src, float64(st.Size())/(1<<20))
	b.SetBytes(st.Size())
	for b.Loop() {
		f, err := sealexe.Seal(src)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

// BenchmarkJoin is one `nsjoin -t PID -- true`: start, seal, join every
// namespace of a target, clone, continue, execute, wait.
func BenchmarkJoin(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("skipped: needs root")
	}
	tg := startTarget(b, targetOpts{})
	bin := helper(b)
	pid := fmt.Sprint(tg.Pid)
	for b.Loop() {
		if r := testenv.Run(b, nil, bin, "-t", pid, "--", "true"); r.Code != 0 {
			b.Fatal(r)
		}
	}
}
