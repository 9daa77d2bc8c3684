package logfile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// ReadOptions select what Read gives, as `docker logs` does.
type ReadOptions struct {
	Tail   int       // the last Tail entries only; < 0 for all
	Since  time.Time // entries at or after it (zero: from the start)
	Until  time.Time // entries before it (zero: no end)
	Follow bool      // then wait for more, across rotations, until Done
	// Done, when following, says the writer is finished (the container
	// has exited and its monitor flushed the log): what is left is read
	// and Read returns. Nil follows until ctx ends.
	Done func() bool
	// Poll is how often a follower looks for more (default 100 ms).
	Poll time.Duration
}

// bufSize bounds one line of a log file: the writer's longest (MaxLine
// bytes of control characters, each escaped in six) fits, so a longer one
// means a damaged file, not a reason to use more memory.
const bufSize = 128 * 1024

// Read calls fn with the entries of the log at path (and of its rotated
// files, oldest first) that o selects, in order. A missing log is an empty
// one. An fn error ends Read and is returned.
func Read(ctx context.Context, path string, o ReadOptions, fn func(Entry) error) error {
	files := rotated(path)
	keep := func(e Entry) bool {
		return (o.Since.IsZero() || !e.Time.Before(o.Since)) && (o.Until.IsZero() || e.Time.Before(o.Until))
	}
	var ring []Entry // the last Tail entries, when Tail >= 0
	emit := func(e Entry) error {
		if !keep(e) {
			return nil
		}
		if o.Tail < 0 {
			return fn(e)
		}
		if o.Tail == 0 {
			return nil
		}
		if len(ring) == o.Tail {
			ring = append(ring[:0], ring[1:]...)
		}
		ring = append(ring, e)
		return nil
	}
	for i, p := range files {
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("open log %s: %w", p, err)
		}
		r := bufio.NewReaderSize(f, bufSize)
		if err := readEntries(r, p, emit); err != nil {
			f.Close()
			return err
		}
		if i == len(files)-1 && o.Follow {
			return follow(ctx, path, f, r, o, ring, fn, keep) // it closes f
		}
		f.Close()
	}
	for _, e := range ring {
		if err := fn(e); err != nil {
			return err
		}
	}
	if o.Follow {
		// No log yet: wait for one.
		return follow(ctx, path, nil, nil, o, nil, fn, keep)
	}
	return nil
}

// rotated lists the log's files, oldest first: path.N ... path.1, path.
func rotated(path string) []string {
	var older []string
	for i := 1; ; i++ {
		p := path + "." + strconv.Itoa(i)
		if _, err := os.Lstat(p); err != nil {
			break
		}
		older = append([]string{p}, older...)
	}
	return append(older, path)
}

// readEntries decodes whole lines until the end of what is written; a
// last line without its newline is being written: it is left unread.
func readEntries(r *bufio.Reader, name string, emit func(Entry) error) error {
	for {
		line, err := readLine(r)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read log %s: %w", name, err)
		}
		var e Entry
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("log %s: a line that is not a log entry: %w", name, err)
		}
		if err := emit(e); err != nil {
			return err
		}
	}
}

// readLine returns one complete line. At a partial last line it returns
// io.EOF without consuming it, so that a follower reads it whole later.
func readLine(r *bufio.Reader) ([]byte, error) {
	for size := 4096; ; size *= 2 {
		size = min(size, r.Size())
		buf, err := r.Peek(size)
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			line := make([]byte, i+1)
			_, _ = io.ReadFull(r, line)
			return line, nil
		}
		switch {
		case err == nil && size == r.Size(), err == bufio.ErrBufferFull:
			return nil, fmt.Errorf("a line longer than %d bytes: not a log entry", r.Size())
		case err != nil:
			return nil, io.EOF // nothing more, or a line still being written
		}
	}
}

// follow emits what is already kept (ring), then what is appended, and
// goes on into the next file when the writer rotates: the file at path is
// then another one, and what is left of the old one is read first.
func follow(ctx context.Context, path string, f *os.File, r *bufio.Reader, o ReadOptions, ring []Entry, fn func(Entry) error, keep func(Entry) bool) error {
	for _, e := range ring {
		if err := fn(e); err != nil {
			return err
		}
	}
	emit := func(e Entry) error {
		if !keep(e) {
			if !o.Until.IsZero() && !e.Time.Before(o.Until) {
				return errUntil
			}
			return nil
		}
		return fn(e)
	}
	poll := o.Poll
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	for {
		done := o.Done != nil && o.Done() // asked before the last read: nothing is lost
		if f != nil {
			if err := readEntries(r, path, emit); err != nil {
				if err == errUntil {
					return nil
				}
				return err
			}
		}
		// Rotated (or created)? The path names another file now.
		if st, err := os.Stat(path); err == nil && (f == nil || !sameFile(f, st)) {
			nf, err := os.Open(path)
			if err == nil {
				if f != nil {
					// What the old file still holds came before.
					if err := readEntries(r, path, emit); err != nil && err != errUntil {
						nf.Close()
						return err
					}
					f.Close()
				}
				f, r = nf, bufio.NewReaderSize(nf, bufSize)
				continue
			}
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}

var errUntil = errors.New("until reached")

func sameFile(f *os.File, st os.FileInfo) bool {
	fst, err := f.Stat()
	return err == nil && os.SameFile(fst, st)
}
