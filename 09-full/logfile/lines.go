package logfile

import (
	"bytes"
	"time"
)

// MaxLine is the longest piece of a line one entry holds, as Docker's
// 16 KiB: a longer line is split into several entries, the last one with
// the newline.
const MaxLine = 16 * 1024

// A Lines turns what a stream of the container writes into entries, one
// per line: the container's write calls need not end on a line, and a
// line may come in several of them.
type Lines struct {
	stream string
	emit   func(Entry) error
	buf    []byte
	now    func() time.Time
}

// NewLines returns a Lines for stream that hands each entry to emit.
func NewLines(stream string, emit func(Entry) error) *Lines {
	return &Lines{stream: stream, emit: emit, now: time.Now}
}

// Write takes what the container wrote.
func (l *Lines) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.buf = append(l.buf, p...)
			p = nil
		} else {
			l.buf = append(l.buf, p[:i+1]...)
			p = p[i+1:]
		}
		for len(l.buf) >= MaxLine || (len(l.buf) > 0 && l.buf[len(l.buf)-1] == '\n') {
			cut := len(l.buf)
			if cut > MaxLine {
				cut = MaxLine
			}
			if err := l.emit(Entry{Log: string(l.buf[:cut]), Stream: l.stream, Time: l.now()}); err != nil {
				return n - len(p), err
			}
			l.buf = append(l.buf[:0], l.buf[cut:]...)
		}
	}
	return n, nil
}

// Flush emits what is left of a last line without its newline, as Docker
// does when the stream closes.
func (l *Lines) Flush() error {
	if len(l.buf) == 0 {
		return nil
	}
	err := l.emit(Entry{Log: string(l.buf), Stream: l.stream, Time: l.now()})
	l.buf = l.buf[:0]
	return err
}
