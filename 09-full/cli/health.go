//go:build linux

package cli

import (
	"github.com/moby/moby/api/types/container"

	"berth/09-full/engine"
	"berth/09-full/store"
)

// healthText is what docker ps adds to a running container's status:
// " (healthy)", " (unhealthy)", " (health: starting)".
func healthText(rec *store.Record, st *store.State) string {
	if st.Status != store.Running {
		return ""
	}
	cfg, err := engine.ConfigOf(rec)
	if err != nil {
		return ""
	}
	h := engine.HealthOf(cfg, st)
	switch {
	case h == nil:
		return ""
	case h.Status == store.HealthStarting:
		return " (health: starting)"
	}
	return " (" + h.Status + ")"
}

// inspectHealth fills inspect's State.Health (the last checks) and
// Config.Healthcheck, as Docker shows them.
func inspectHealth(r *container.InspectResponse, cfg *engine.Config, st *store.State) {
	if hc := cfg.Settings.Healthcheck; hc != nil {
		r.Config.Healthcheck = &container.HealthConfig{Test: hc.Test, Interval: hc.Interval, Timeout: hc.Timeout,
			StartPeriod: hc.StartPeriod, StartInterval: hc.StartInterval, Retries: hc.Retries}
	}
	h := engine.HealthOf(cfg, st)
	if h == nil {
		return
	}
	out := &container.Health{Status: container.HealthStatus(h.Status), FailingStreak: h.FailingStreak, Log: []*container.HealthcheckResult{}}
	for _, l := range h.Log {
		out.Log = append(out.Log, &container.HealthcheckResult{Start: l.Start, End: l.End, ExitCode: l.ExitCode, Output: l.Output})
	}
	r.State.Health = out
}
