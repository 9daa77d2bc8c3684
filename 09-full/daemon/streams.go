//go:build linux

package daemon

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	mobytypes "github.com/moby/moby/api/types"
	"github.com/moby/moby/api/types/container"

	"berth/09-full/attach"
	"berth/09-full/engine"
	"berth/09-full/logfile"
	"berth/09-full/store"
)

// frameWriter writes Docker's multiplexed stream: each chunk behind an
// 8-byte header, [stream 0 0 0 size(4 bytes, big-endian)], stream 1 for
// stdout and 2 for stderr, so that one connection carries both (a
// terminal's output is one stream: written raw, no header). A write that
// fails (the client went away) calls gone, once, to stop the source.
type frameWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	stream byte // 0: raw
	flush  func()
	gone   func()
	once   *sync.Once
}

func (f *frameWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var err error
	if f.stream == 0 {
		_, err = f.w.Write(p)
	} else {
		for len(p) > 0 && err == nil {
			n := min(len(p), 1<<20)
			var h [8]byte
			h[0] = f.stream
			binary.BigEndian.PutUint32(h[4:], uint32(n))
			if _, err = f.w.Write(h[:]); err == nil {
				_, err = f.w.Write(p[:n])
			}
			p = p[n:]
		}
	}
	if err == nil && f.flush != nil {
		f.flush()
	}
	if err != nil && f.gone != nil {
		f.once.Do(f.gone)
	}
	return len(p), err
}

// outputs are the writers of a container's stdout and stderr on w:
// raw for a terminal, else framed.
func outputs(w io.Writer, tty bool, flush, gone func()) (stdout, stderr io.Writer) {
	mu, once := &sync.Mutex{}, &sync.Once{}
	if tty {
		raw := &frameWriter{mu: mu, w: w, flush: flush, gone: gone, once: once}
		return raw, raw
	}
	return &frameWriter{mu: mu, w: w, stream: 1, flush: flush, gone: gone, once: once},
		&frameWriter{mu: mu, w: w, stream: 2, flush: flush, gone: gone, once: once}
}

func mediaType(tty bool) string {
	if tty {
		return mobytypes.MediaTypeRawStream
	}
	return mobytypes.MediaTypeMultiplexedStream
}

// logs is GET /containers/{id}/logs: the json-file log through the same
// reader as berth logs, framed unless the container has a terminal;
// with follow=1 until the container ends or the client leaves.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	wantOut, wantErr := boolParam(r, "stdout"), boolParam(r, "stderr")
	if !wantOut && !wantErr {
		return badRequest("Bad parameters: you must choose at least one stream")
	}
	o := logfile.ReadOptions{Tail: -1, Follow: boolParam(r, "follow")}
	if t := q.Get("tail"); t != "" && t != "all" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return badRequest(fmt.Sprintf("invalid tail %q: a number of lines, or all", t))
		}
		o.Tail = n
	}
	for name, at := range map[string]*time.Time{"since": &o.Since, "until": &o.Until} {
		if v := q.Get(name); v != "" && v != "0" {
			t, err := unixTime(v)
			if err != nil {
				return badRequest(fmt.Sprintf("invalid %s %q: %v", name, v, err))
			}
			*at = t
		}
	}
	stamps := boolParam(r, "timestamps")
	rec, _, err := s.record(r)
	if err != nil {
		return err
	}
	cfg, err := engine.ConfigOf(rec)
	if err != nil {
		return err
	}
	tty := cfg.Spec.Process.Terminal
	o.Done = func() bool {
		st, err := s.eng.Store.View(rec.ID)
		return err != nil || (!st.Running() && st.Status != store.Restarting && !st.MonitorAlive())
	}
	w.Header().Set("Content-Type", mediaType(tty))
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	stdout, stderr := outputs(w, tty, func() { _ = rc.Flush() }, nil)
	// The answer has begun: an error now can only end it.
	_ = logfile.Read(r.Context(), rec.LogPath, o, func(en logfile.Entry) error {
		dst := stdout
		if en.Stream == logfile.Stderr {
			if !wantErr {
				return nil
			}
			dst = stderr
		} else if !wantOut {
			return nil
		}
		line := en.Log
		if stamps {
			line = en.Time.UTC().Format(time.RFC3339Nano) + " " + line
		}
		_, err := io.WriteString(dst, line)
		return err
	})
	return nil
}

// unixTime is the API's since/until: seconds since the epoch, with an
// optional fraction.
func unixTime(v string) (time.Time, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return time.Time{}, err
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
}

// attach is POST /containers/{id}/attach: the HTTP connection is taken
// over (hijacked: 101 UPGRADED, then raw bytes both ways) and joined to
// the container's monitor, as berth attach joins a terminal to it. The
// client's bytes are the container's stdin; its output comes back
// framed (raw with a terminal). The connection ends when the container
// exits, the detach keys are typed, or the client leaves.
func (s *Server) attach(w http.ResponseWriter, r *http.Request) error {
	if boolParam(r, "logs") {
		return badRequest("attach with logs=1 is not supported yet: use GET /containers/{id}/logs")
	}
	if !boolParam(r, "stream") {
		return badRequest("attach without stream=1 is not supported yet")
	}
	rec, _, err := s.record(r)
	if err != nil {
		return err
	}
	cfg, err := engine.ConfigOf(rec)
	if err != nil {
		return err
	}
	keys := attach.DefaultDetachKeys
	if k := r.URL.Query().Get("detachKeys"); k != "" {
		if keys, err = attach.ParseDetachKeys(k); err != nil {
			return badRequest(err.Error())
		}
	}
	tty, set := cfg.Spec.Process.Terminal, cfg.Settings
	wantIn := boolParam(r, "stdin") && set.OpenStdin
	mon, err := attach.Dial(filepath.Join(s.eng.Store.LiveDir(rec.ID), "attach.sock"), attach.Options{
		Stdin: wantIn, Stdout: boolParam(r, "stdout"), Stderr: boolParam(r, "stderr"), StdinOnce: wantIn && set.StdinOnce,
	})
	if err != nil {
		return conflict(fmt.Sprintf("container %s is not running: its monitor does not answer", rec.ID[:12]))
	}
	defer mon.Close()
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return err
	}
	defer conn.Close()
	status := "HTTP/1.1 200 OK\r\n"
	if r.Header.Get("Upgrade") != "" {
		status = "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
	}
	if _, err := fmt.Fprintf(conn, "%sContent-Type: %s\r\nApi-Version: %s\r\n\r\n", status, mediaType(tty), APIVersion); err != nil {
		return nil
	}
	stdout, stderr := outputs(conn, tty, nil, func() { mon.Close() })
	var stdin io.Reader
	if wantIn {
		stdin = io.MultiReader(io.LimitReader(buf.Reader, int64(buf.Reader.Buffered())), conn)
	}
	_, _ = mon.Stream(stdin, stdout, stderr, keys)
	if c, ok := conn.(*net.UnixConn); ok {
		_ = c.CloseWrite()
	}
	return nil
}

// resize is POST /containers/{id}/resize?h=ROWS&w=COLS: the size of the
// container's terminal, sent through its monitor.
func (s *Server) resize(w http.ResponseWriter, r *http.Request) error {
	rows, err1 := strconv.ParseUint(r.URL.Query().Get("h"), 10, 16)
	cols, err2 := strconv.ParseUint(r.URL.Query().Get("w"), 10, 16)
	if err1 != nil || err2 != nil {
		return badRequest("resize: h and w must be numbers from 0 to 65535")
	}
	rec, st, err := s.record(r)
	if err != nil {
		return err
	}
	if !st.Running() && st.Status != store.Created {
		return conflict(fmt.Sprintf("container %s is not running", rec.ID))
	}
	mon, err := attach.Dial(filepath.Join(s.eng.Store.LiveDir(rec.ID), "attach.sock"), attach.Options{})
	if err != nil {
		return conflict(fmt.Sprintf("container %s is not running", rec.ID))
	}
	defer mon.Close()
	if err := mon.Resize(uint16(rows), uint16(cols)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// wait is POST /containers/{id}/wait: the answer's header goes out at
// once (the client then knows the wait is in place and may start the
// container), its body {"StatusCode": N} when the condition is met:
// not-running (now, if it is not), next-exit, or removed (docker run
// --rm). The exit comes from the monitor's Exit frame, which it sends
// once the exit command has run (a --rm container is gone by then), so
// an exit is never missed between two looks at the state.
func (s *Server) wait(w http.ResponseWriter, r *http.Request) error {
	cond := container.WaitCondition(r.URL.Query().Get("condition"))
	switch cond {
	case "", container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return badRequest(fmt.Sprintf("invalid condition %q", cond))
	}
	rec, st, err := s.record(r)
	if err != nil {
		return err
	}
	active := st.Running() || st.Status == store.Restarting
	var mon *attach.Client
	if active || cond != "" && cond != container.WaitConditionNotRunning {
		mon, _ = attach.Dial(filepath.Join(s.eng.Store.LiveDir(rec.ID), "attach.sock"), attach.Options{})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	code := -1
	if mon != nil {
		// Closing the monitor's connection when the client leaves ends
		// the wait.
		done := make(chan struct{})
		go func() {
			select {
			case <-r.Context().Done():
				mon.Close()
			case <-done:
			}
		}()
		res, err := mon.Stream(nil, nil, nil, nil)
		close(done)
		mon.Close()
		if err == nil && res.Exited {
			code = res.Code
		}
	}
	if code < 0 {
		// Not through the monitor: the exit as recorded (engine.Wait waits
		// for the record: the view alone says 255 in the moment between
		// the init's death and the monitor's exit file).
		code = st.ExitCode
		if c, err := s.eng.Wait(rec.ID); err == nil {
			code = c
		}
	}
	if cond == container.WaitConditionRemoved {
		for r.Context().Err() == nil {
			if _, err := s.eng.Store.Get(rec.ID); err != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return writeBody(w, container.WaitResponse{StatusCode: int64(code)})
}
