package logfile

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// The writer the reader's tests write logs with: what the monitor
// (09-full/berth-monitor/logs.c) does, in Go, so that a test can rotate
// under a follower at the moment it chooses. The monitor's own output is
// checked against encoding/json in 09-full/berth-monitor/montest.

// A Writer appends entries to a log file and rotates it.
type Writer struct {
	mu      sync.Mutex
	path    string
	maxSize int64 // 0: no rotation
	maxFile int   // files kept, the current one included (>= 1)
	f       *os.File
	size    int64
	buf     []byte
}

// Open opens (creating) the log at path for appending. maxSize 0 never
// rotates; maxFile is how many files are kept, the current one included,
// as Docker's max-file (1 when 0).
func Open(path string, maxSize int64, maxFile int) (*Writer, error) {
	if maxFile < 1 {
		maxFile = 1
	}
	if maxFile > MaxFiles {
		return nil, fmt.Errorf("log %s: max-file %d: at most %d", path, maxFile, MaxFiles)
	}
	w := &Writer{path: path, maxSize: maxSize, maxFile: maxFile}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Writer) open() error {
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("open log %s: %w", w.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stat log %s: %w", w.path, err)
	}
	w.f, w.size = f, st.Size()
	return nil
}

// Write appends one entry. A line that would pass max-size goes into a
// fresh file: the current one is renamed to .1 (and .1 to .2 ..., the
// oldest beyond max-file dropped), as Docker does.
func (w *Writer) Write(e Entry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return errors.New("log is closed")
	}
	w.buf = AppendJSON(w.buf[:0], e)
	if w.maxSize > 0 && w.size > 0 && w.size+int64(len(w.buf)) > w.maxSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(w.buf)
	w.size += int64(n)
	if err != nil {
		return fmt.Errorf("write log %s: %w", w.path, err)
	}
	return nil
}

func (w *Writer) rotate() error {
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("close log %s: %w", w.path, err)
	}
	w.f = nil
	if w.maxFile == 1 {
		// A new file, not the old one truncated: a follower (logs -f)
		// reads on at its offset in the file it has open, and in a file
		// truncated under it that offset is past the end (lines missed)
		// or, once the file grows again, in the middle of a line. A new
		// file it notices, as it notices a rename.
		if err := os.Remove(w.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotate log %s: %w", w.path, err)
		}
		return w.open()
	}
	for i := w.maxFile - 1; i > 0; i-- {
		from := w.path
		if i > 1 {
			from += "." + strconv.Itoa(i-1)
		}
		err := os.Rename(from, w.path+"."+strconv.Itoa(i))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotate log %s: %w", w.path, err)
		}
	}
	return w.open()
}

// Close closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// AppendJSON appends e as Docker writes it, with its newline: the fields
// in Docker's order, the time in RFC 3339 with nanoseconds, UTC.
func AppendJSON(b []byte, e Entry) []byte {
	b = append(b, `{"log":`...)
	b = appendString(b, e.Log)
	b = append(b, `,"stream":`...)
	b = appendString(b, e.Stream)
	b = append(b, `,"time":"`...)
	b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, "\"}\n"...)
}

const hex = "0123456789abcdef"

// appendString appends s as a JSON string, as encoding/json would: the
// usual escapes, control characters and <, >, & as \u00XX, invalid UTF-8
// as U+FFFD, and U+2028, U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
