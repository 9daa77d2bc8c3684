//go:build linux

package seccomp

import (
	"os"
	"runtime"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// BenchmarkCompileDocker: Docker's default profile to BPF, in process.
func BenchmarkCompileDocker(b *testing.B) {
	prof := dockerProfile(b, dockerCaps)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := CompileFor(prof, specs.ArchX86_64); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadDocker: the seccomp(2) call that installs the compiled
// filter. Each load goes on a thread of its own, which then ends (a
// goroutine that exits locked to its thread takes the thread with it), so
// filters do not pile up on the test process.
func BenchmarkLoadDocker(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("skipped: loading a filter without no_new_privs needs CAP_SYS_ADMIN")
	}
	native, err := Native()
	if err != nil {
		b.Skip(err)
	}
	p, err := CompileFor(dockerProfile(b, dockerCaps), native)
	if err != nil {
		b.Fatal(err)
	}
	p.Flags = 0 // this thread only
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		done := make(chan error)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
			done <- p.Load()
		}()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadBaseline is BenchmarkLoadDocker without the load: the
// cost of a thread that starts and ends, to subtract.
func BenchmarkLoadBaseline(b *testing.B) {
	for i := 0; i < b.N; i++ {
		done := make(chan error)
		go func() {
			runtime.LockOSThread()
			done <- nil
		}()
		<-done
	}
}

// The parent compiles, the child loads what it was sent: the bytes must
// come back as the same program.
func TestMarshalRoundTrip(t *testing.T) {
	p, err := CompileFor(dockerProfile(t, dockerCaps), specs.ArchX86_64)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	q, err := UnmarshalProgram(b, p.Flags)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := q.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(b2) || q.Flags != p.Flags || len(q.Instructions) != len(p.Instructions) {
		t.Fatal("the program changed on its way")
	}
	for _, bad := range [][]byte{nil, b[:7], make([]byte, 8*(maxInstructions+1))} {
		if _, err := UnmarshalProgram(bad, 0); err == nil {
			t.Errorf("%d bytes taken for a program", len(bad))
		}
	}
}

// BenchmarkSyscall{,Filtered}: what every system call of a container pays
// for the filter: getppid with no filter, then under Docker's (on a
// thread of its own, which ends with the benchmark).
func BenchmarkSyscall(b *testing.B) { benchSyscall(b, nil) }

func BenchmarkSyscallFiltered(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("skipped: loading a filter without no_new_privs needs CAP_SYS_ADMIN")
	}
	native, err := Native()
	if err != nil {
		b.Skip(err)
	}
	p, err := CompileFor(dockerProfile(b, dockerCaps), native)
	if err != nil {
		b.Fatal(err)
	}
	p.Flags = 0
	benchSyscall(b, p)
}

func benchSyscall(b *testing.B, p *Program) {
	done := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the filter goes with the thread
		if p != nil {
			if err := p.Load(); err != nil {
				done <- err
				return
			}
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			syscall.Getppid()
		}
		done <- nil
	}()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
