//go:build linux

package build

import (
	"fmt"
	"strconv"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// healthcheck reads HEALTHCHECK [--interval=D] [--timeout=D]
// [--start-period=D] [--start-interval=D] [--retries=N] CMD command, or
// HEALTHCHECK NONE, as docker build does: the shell form becomes
// ["CMD-SHELL", "command"], the exec form ["CMD", args...]. It is kept in
// the image config's Docker field (config.Healthcheck), which the OCI
// config has no name for; berth run reads it there (09-full/specgen).
func healthcheck(in instruction) (*dockerspec.HealthcheckConfig, error) {
	flags, err := parseFlags(in, "interval", "timeout", "start-period", "start-interval", "retries")
	if err != nil {
		return nil, err
	}
	switch {
	case len(in.args) == 1 && in.args[0] == "NONE":
		if len(flags) > 0 {
			return nil, in.errorf("NONE takes no flags")
		}
		return &dockerspec.HealthcheckConfig{Test: []string{"NONE"}}, nil
	case len(in.args) > 0 && in.args[0] == "NONE":
		return nil, in.errorf("NONE takes no arguments")
	case len(in.args) < 2 || in.args[0] != "CMD":
		return nil, in.errorf("needs CMD and a command, or NONE")
	}
	hc := &dockerspec.HealthcheckConfig{}
	if in.json {
		hc.Test = append([]string{"CMD"}, in.args[1:]...)
	} else {
		hc.Test = []string{"CMD-SHELL", in.args[1]}
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{{"interval", &hc.Interval}, {"timeout", &hc.Timeout}, {"start-period", &hc.StartPeriod}, {"start-interval", &hc.StartInterval}} {
		v, ok := flags[d.name]
		if !ok {
			continue
		}
		if *d.dst, err = time.ParseDuration(v); err != nil {
			return nil, in.errorf("--%s=%s: not a duration (30s, 1m)", d.name, v)
		}
		if *d.dst != 0 && *d.dst < time.Millisecond {
			return nil, in.errorf("--%s=%s: cannot be less than 1ms", d.name, v)
		}
		if *d.dst < 0 {
			return nil, in.errorf("--%s=%s: cannot be negative", d.name, v)
		}
	}
	if v, ok := flags["retries"]; ok {
		if hc.Retries, err = strconv.Atoi(v); err != nil || hc.Retries < 0 {
			return nil, in.errorf("--retries=%s: want a count, 0 or more", v)
		}
	}
	return hc, nil
}

// healthText is how the step shows in the history.
func healthText(hc *dockerspec.HealthcheckConfig) string {
	if len(hc.Test) == 1 {
		return "HEALTHCHECK NONE"
	}
	return fmt.Sprintf("HEALTHCHECK %q interval=%v timeout=%v start-period=%v retries=%d", hc.Test, hc.Interval, hc.Timeout, hc.StartPeriod, hc.Retries)
}
