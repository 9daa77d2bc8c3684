//go:build linux

package specgen

import (
	"errors"
	"fmt"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/spf13/pflag"

	"berth/09-full/engine"
)

// HealthOptions are run's --health-* flags and --no-healthcheck.
type HealthOptions struct {
	Cmd                            string
	Interval, Timeout, StartPeriod time.Duration
	Retries                        int
	None                           bool
	fs                             *pflag.FlagSet
}

// AddFlags adds the flags under Docker's names.
func (h *HealthOptions) AddFlags(fs *pflag.FlagSet) {
	h.fs = fs
	fs.StringVar(&h.Cmd, "health-cmd", "", "command to run to check health (run by /bin/sh -c)")
	fs.DurationVar(&h.Interval, "health-interval", 0, "time between running the check (ms|s|m|h) (default 30s)")
	fs.DurationVar(&h.Timeout, "health-timeout", 0, "maximum time to allow one check to run (ms|s|m|h) (default 30s)")
	fs.DurationVar(&h.StartPeriod, "health-start-period", 0, "start period for the container to initialize before counting retries towards unstable (ms|s|m|h) (default 0s)")
	fs.IntVar(&h.Retries, "health-retries", 0, "consecutive failures needed to report unhealthy (default 3)")
	fs.BoolVar(&h.None, "no-healthcheck", false, "disable any container-specified HEALTHCHECK")
}

// minHealthDuration is Docker's least interval, timeout and start period.
const minHealthDuration = time.Millisecond

// healthcheck is the image's HEALTHCHECK (nil if none) with the flags
// over it, field by field, as docker run merges them.
func healthcheck(h *HealthOptions, image *dockerspec.HealthcheckConfig) (*dockerspec.HealthcheckConfig, error) {
	changed := func(name string) bool { return h.fs != nil && h.fs.Changed(name) }
	some := changed("health-cmd") || changed("health-interval") || changed("health-timeout") ||
		changed("health-start-period") || changed("health-retries")
	if h.None {
		if some {
			return nil, errors.New("--no-healthcheck conflicts with --health-* options")
		}
		return &dockerspec.HealthcheckConfig{Test: []string{"NONE"}}, nil
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"interval", h.Interval}, {"timeout", h.Timeout}, {"start-period", h.StartPeriod}} {
		if changed("health-"+d.name) && d.v < minHealthDuration {
			return nil, fmt.Errorf("--health-%s cannot be less than %v (it is %v)", d.name, minHealthDuration, d.v)
		}
	}
	if h.Retries < 0 {
		return nil, errors.New("--health-retries cannot be negative")
	}
	var hc dockerspec.HealthcheckConfig
	if image != nil {
		hc = *image
	}
	if changed("health-cmd") {
		if h.Cmd == "" {
			return nil, errors.New("--health-cmd is empty")
		}
		hc.Test = []string{"CMD-SHELL", h.Cmd}
	}
	if changed("health-interval") {
		hc.Interval = h.Interval
	}
	if changed("health-timeout") {
		hc.Timeout = h.Timeout
	}
	if changed("health-start-period") {
		hc.StartPeriod = h.StartPeriod
	}
	if changed("health-retries") {
		hc.Retries = h.Retries
	}
	if len(hc.Test) == 0 {
		if some {
			return nil, errors.New("--health-* options need a health check: --health-cmd, or an image with a HEALTHCHECK")
		}
		return nil, nil
	}
	if engine.HealthEnabled(&hc) {
		if _, err := engine.HealthArgs(&hc); err != nil {
			return nil, err
		}
	}
	return &hc, nil
}
