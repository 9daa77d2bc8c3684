// Package progress shows long work (pull, push, load) as docker does: on
// a terminal, a line per layer, redrawn in place with a bar while its
// bytes move; on anything else (a pipe, a file, a log), only the lines
// worth keeping, one per event, which a script can read. Chapter:
// docs/09-full.md, "Progress".
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	units "github.com/docker/go-units"
	"golang.org/x/term"
)

// Output is where long work reports.
type Output struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	width int      // the terminal's columns (0: unknown)
	ids   []string // the layer lines on screen since the last plain line, top first
	// Every is how often a bar is redrawn at most.
	Every time.Duration
}

// New reports to w: as a terminal when w is one.
func New(w io.Writer) *Output {
	if w == nil {
		w = io.Discard
	}
	o := &Output{w: w, Every: 100 * time.Millisecond}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		o.tty = true
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil {
			o.width = cols
		}
	}
	return o
}

// Terminal reports whether o draws for a terminal.
func (o *Output) Terminal() bool { return o.tty }

// Printf writes a plain line, on a terminal and elsewhere alike. The
// layer lines above it are done with: a later line of a layer starts
// below it.
func (o *Output) Printf(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ids = nil
	fmt.Fprintf(o.w, format+"\n", args...)
}

// Status says what a layer is doing now ("Pulling fs layer", "Verifying
// Checksum"): on a terminal on the layer's own line, which the next
// status replaces; elsewhere as a line of its own, as docker's client
// prints every message but a bar (Reader) on a pipe.
func (o *Output) Status(id, text string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.tty {
		fmt.Fprintf(o.w, "%s\n", line(id, text))
		return
	}
	o.draw(id, text)
}

// bar draws a layer's bar: on a terminal only (a bar is not a line worth
// keeping).
func (o *Output) bar(id, text string) {
	if !o.tty {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.draw(id, text)
}

// Done says how a layer ended ("Pull complete", "Pushed"): on its line on
// a terminal, and as a line of its own elsewhere (as Status: the two
// differ in what they mean, not in how they print).
func (o *Output) Done(id, text string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.tty {
		fmt.Fprintf(o.w, "%s\n", line(id, text))
		return
	}
	o.draw(id, text)
}

// draw writes a layer's line: a new one below the others, or, for a
// layer already shown, over its own: the cursor goes up to it, the line
// is cleared and written, and the cursor comes back down (the ANSI
// sequences docker's client uses).
func (o *Output) draw(id, text string) {
	l := line(id, text)
	if o.width > 1 && len(l) >= o.width {
		l = l[:o.width-1] // a wrapped line would throw the count of lines off
	}
	for i, x := range o.ids {
		if x == id {
			up := len(o.ids) - i
			fmt.Fprintf(o.w, "\x1b[%dA\r\x1b[2K%s\r\x1b[%dB", up, l, up)
			return
		}
	}
	o.ids = append(o.ids, id)
	fmt.Fprintf(o.w, "\r\x1b[2K%s\n", l)
}

func line(id, text string) string {
	if id == "" {
		return text
	}
	return id + ": " + text
}

// Bar is docker's progress bar: "Downloading [=====>      ]  1.2MB/2.1MB".
func Bar(action string, done, total int64) string {
	const width = 50
	if total <= 0 {
		return fmt.Sprintf("%s %s", action, units.HumanSize(float64(done)))
	}
	n := int(float64(width) * float64(min(done, total)) / float64(total))
	return fmt.Sprintf("%s [%s>%s] %8s/%s", action, strings.Repeat("=", n), strings.Repeat(" ", width-n),
		units.HumanSize(float64(done)), units.HumanSize(float64(total)))
}

// Reader passes r on and, on a terminal, draws the layer's bar as its
// bytes go through (total: the size expected; 0 if unknown).
func (o *Output) Reader(id, action string, r io.Reader, total int64) io.Reader {
	if !o.tty {
		return r
	}
	return &reader{o: o, id: id, action: action, r: r, total: total}
}

type reader struct {
	o         *Output
	id        string
	action    string
	r         io.Reader
	n, total  int64
	lastDrawn time.Time
	ended     bool
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	if r.ended {
		return n, err
	}
	// The last bar is drawn once: at the total, or at the end of r.
	last := err != nil || (r.total > 0 && r.n >= r.total)
	if now := time.Now(); now.Sub(r.lastDrawn) >= r.o.Every || last {
		r.lastDrawn, r.ended = now, last
		r.o.bar(r.id, Bar(r.action, r.n, r.total))
	}
	return n, err
}
