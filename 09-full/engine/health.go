//go:build linux

package engine

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"

	"berth/01-uts/spine"
	"berth/09-full/execin"
	"berth/09-full/store"
)

// Health checks, as Docker's: the image's HEALTHCHECK (or --health-cmd)
// runs inside the container every interval, through exec's machinery, as
// the container's user with the container's restrictions. The monitor
// ticks (it is small and stays; the check is not): at each tick it runs
// `berth internal healthcheck ID`, which is HealthCheck below, and waits
// for it before the next interval. Exit 0 is healthy; anything else, or
// no answer within the timeout, a failure; Retries failures in a row
// make the container unhealthy. Failures in the start period do not
// count until a check has passed.

// Docker's defaults.
const (
	DefaultHealthInterval = 30 * time.Second
	DefaultHealthTimeout  = 30 * time.Second
	DefaultHealthRetries  = 3
	// MaxHealthOutput bounds what a check's output keeps (Docker: 4096).
	MaxHealthOutput = 4096
)

// HealthEnabled reports whether hc is a check to run (not none, not
// NONE).
func HealthEnabled(hc *dockerspec.HealthcheckConfig) bool {
	return hc != nil && len(hc.Test) > 0 && hc.Test[0] != "NONE"
}

// HealthArgs is the command of a check: CMD's arguments as they are,
// CMD-SHELL's string given to /bin/sh -c.
func HealthArgs(hc *dockerspec.HealthcheckConfig) ([]string, error) {
	if !HealthEnabled(hc) {
		return nil, fmt.Errorf("no health check")
	}
	switch hc.Test[0] {
	case "CMD":
		if len(hc.Test) < 2 {
			return nil, fmt.Errorf("health check CMD without a command")
		}
		return hc.Test[1:], nil
	case "CMD-SHELL":
		if len(hc.Test) != 2 {
			return nil, fmt.Errorf("health check CMD-SHELL takes one string")
		}
		return []string{"/bin/sh", "-c", hc.Test[1]}, nil
	}
	return nil, fmt.Errorf("health check test %q: want NONE, CMD or CMD-SHELL", hc.Test[0])
}

// HealthInterval is hc's interval, or Docker's default.
func HealthInterval(hc *dockerspec.HealthcheckConfig) time.Duration {
	if hc.Interval > 0 {
		return hc.Interval
	}
	return DefaultHealthInterval
}

// HealthOf is the container's health as it is now: nil without a health
// check, "starting" until a check of this run has been recorded.
func HealthOf(cfg *Config, st *store.State) *store.Health {
	if !HealthEnabled(cfg.Settings.Healthcheck) {
		return nil
	}
	if st.Health == nil || !st.Health.Run.Equal(st.StartedAt) {
		return &store.Health{Status: store.HealthStarting, Run: st.StartedAt}
	}
	return st.Health
}

// HealthCheck runs the container's check once and records the result in
// its state. A container that is not running is left alone.
func (e *Engine) HealthCheck(ref string) error {
	rec, err := e.Store.Get(ref)
	if err != nil {
		return err
	}
	cfg, err := ConfigOf(rec)
	if err != nil {
		return err
	}
	hc := cfg.Settings.Healthcheck
	args, err := HealthArgs(hc)
	if err != nil {
		return err
	}
	st, err := e.Store.View(rec.ID)
	if err != nil {
		return err
	}
	if st.Status != store.Running {
		return nil
	}
	timeout := hc.Timeout
	if timeout <= 0 {
		timeout = DefaultHealthTimeout
	}
	res := probe(rec, st.Pid, st.PidStart, args, timeout)
	before, after := string(store.HealthStarting), ""
	err = e.Store.Update(rec.ID, func(now *store.State) error {
		if now.Status != store.Running || !now.StartedAt.Equal(st.StartedAt) {
			return nil // it ended, or restarted, meanwhile
		}
		if now.Health != nil && now.Health.Run.Equal(now.StartedAt) {
			before = string(now.Health.Status)
		}
		recordHealth(now, hc, res)
		after = string(now.Health.Status)
		return nil
	})
	// Docker journals a change of status, not every check.
	if err == nil && after != "" && after != before {
		e.event(rec, "health_status: "+after, nil)
	}
	return err
}

// recordHealth adds a result to the state's health, as Docker's
// handleProbeResult does.
func recordHealth(st *store.State, hc *dockerspec.HealthcheckConfig, res store.HealthResult) {
	h := st.Health
	if h == nil || !h.Run.Equal(st.StartedAt) {
		h = &store.Health{Status: store.HealthStarting, Run: st.StartedAt}
		st.Health = h
	}
	h.Log = append(h.Log, res)
	if len(h.Log) > store.MaxHealthLog {
		h.Log = h.Log[len(h.Log)-store.MaxHealthLog:]
	}
	if res.ExitCode == 0 {
		h.FailingStreak, h.Status = 0, store.HealthHealthy
		return
	}
	// In the start period, before any check passed, failures are free.
	if h.Status == store.HealthStarting && res.Start.Sub(st.StartedAt) < hc.StartPeriod {
		return
	}
	retries := hc.Retries
	if retries <= 0 {
		retries = DefaultHealthRetries
	}
	h.FailingStreak++
	if h.FailingStreak >= retries {
		h.Status = store.HealthUnhealthy
	}
}

// probe runs the check's command in the container and returns its result:
// its exit code and output, -1 if it could not run or did not end in time.
func probe(rec *store.Record, pid int, start uint64, args []string, timeout time.Duration) store.HealthResult {
	res := store.HealthResult{Start: time.Now()}
	out := &boundedBuffer{max: MaxHealthOutput}
	req, err := execin.NewRequest(rec.Spec, execin.Options{Args: args})
	if err != nil {
		res.End, res.ExitCode, res.Output = time.Now(), -1, err.Error()
		return res
	}
	t := execin.Target{Pid: pid, Start: start}
	if rec.Spec.Linux != nil && os.Geteuid() == 0 {
		t.CgroupsPath = rec.Spec.Linux.CgroupsPath
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	s, err := execin.Start(ctx, t, req, execin.Stdio{Stdout: out, Stderr: out})
	if err != nil {
		res.End, res.ExitCode = time.Now(), -1
		if ctx.Err() != nil {
			// The timeout covers the whole check, joining included (a slow
			// machine may not even get the process started in time).
			res.Output = fmt.Sprintf("Health check exceeded timeout (%v)", timeout)
			return res
		}
		res.Output = strings.TrimPrefix(err.Error(), "exec: ")
		if c := spine.ExitCode(err); c != spine.ExitRuntime {
			res.Output = fmt.Sprintf("exec failed (%d): %s", c, res.Output)
		}
		return res
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Signal(os.Kill) })
	code, err := s.Wait()
	expired := !stop()
	res.End, res.ExitCode, res.Output = time.Now(), code, out.String()
	switch {
	case expired:
		res.ExitCode, res.Output = -1, fmt.Sprintf("Health check exceeded timeout (%v)", timeout)
	case err != nil:
		res.ExitCode, res.Output = -1, err.Error()
	}
	return res
}

// boundedBuffer keeps the first max bytes written to it and drops the
// rest: a check's output is the container's, and unbounded.
type boundedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		if len(p) > room {
			b.buf.Write(p[:room])
		} else {
			b.buf.Write(p)
		}
	}
	return len(p), nil
}

func (b *boundedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
