//go:build linux

package monitor

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// idlePeriod is how long the monitor must have had nothing to do (no
// output, no client) before it gives memory back.
var idlePeriod = 5 * time.Second

// An idler gives memory back once the monitor has been idle for a while:
// the heap it no longer uses (debug.FreeOSMemory) and its program's pages
// (pageOut). Busy, it does nothing: what a busy monitor touches it keeps.
type idler struct {
	activity atomic.Uint64
	quit     chan struct{}
}

func startIdler() *idler {
	d := &idler{quit: make(chan struct{})}
	go func() {
		t := time.NewTicker(idlePeriod)
		defer t.Stop()
		last, given := d.activity.Load(), false
		for {
			select {
			case <-d.quit:
				return
			case <-t.C:
			}
			now := d.activity.Load()
			if now != last {
				last, given = now, false
				continue
			}
			if !given {
				pageOut()
				given = true
			}
		}
	}()
	return d
}

// busy records that the monitor did something.
func (d *idler) busy() { d.activity.Add(1) }

func (d *idler) stop() { close(d.quit) }

// pageOut gives the kernel back the pages of the monitor's own program
// file that it read to start (the whole binary: the kernel reads ahead)
// and does not need while it waits: madvise(MADV_PAGEOUT) on every
// read-only mapping of its executable. They are clean, file-backed, in the
// page cache: nothing is lost, and the few a wakeup needs (the reaper, the
// copy loops) fault back in. Idle, the monitor then holds little more than
// its heap and stacks. Best effort: a kernel before 5.4 has no
// MADV_PAGEOUT, and then nothing changes.
func pageOut() {
	self, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != self || strings.Contains(fields[1], "w") {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		// The addresses come from the kernel, not from a Go pointer: the
		// raw system call takes them as they are.
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_PAGEOUT)
	}
}
