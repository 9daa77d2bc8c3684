package engine

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseRestartPolicy reads --restart as Docker does: no, always,
// unless-stopped, on-failure[:N].
func ParseRestartPolicy(s string) (RestartPolicy, error) {
	name, n, hasN := strings.Cut(s, ":")
	p := RestartPolicy{Name: name}
	switch name {
	case "", "no":
		p.Name = "no"
		if hasN {
			return p, fmt.Errorf("invalid restart policy %q: maximum retry count can only be used with 'on-failure'", s)
		}
	case "always", "unless-stopped":
		if hasN {
			return p, fmt.Errorf("invalid restart policy %q: maximum retry count can only be used with 'on-failure'", s)
		}
	case "on-failure":
		if hasN {
			v, err := strconv.Atoi(n)
			if err != nil || v < 0 {
				return p, fmt.Errorf("invalid restart policy %q: maximum retry count must be a positive integer", s)
			}
			p.MaximumRetryCount = v
		}
	default:
		return p, fmt.Errorf("invalid restart policy %q: use no, always, unless-stopped or on-failure[:max-retries]", s)
	}
	return p, nil
}

// String is the policy as --restart takes it.
func (p RestartPolicy) String() string {
	if p.Name == "on-failure" && p.MaximumRetryCount > 0 {
		return p.Name + ":" + strconv.Itoa(p.MaximumRetryCount)
	}
	if p.Name == "" {
		return "no"
	}
	return p.Name
}

// ShouldRestart is Docker's rule: always and unless-stopped restart unless
// stopped by hand; on-failure restarts a non-zero exit, at most N times
// (N = 0: no limit).
func (p RestartPolicy) ShouldRestart(exitCode, restartCount int, manuallyStopped bool) bool {
	if manuallyStopped {
		return false
	}
	switch p.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return exitCode != 0 && (p.MaximumRetryCount == 0 || restartCount < p.MaximumRetryCount)
	}
	return false
}

// Docker's back-off: 100 ms before the first restart, doubled before each
// next one, at most a minute; a run that lasted 10 s or more starts the
// count again.
const (
	backoffMin   = 100 * time.Millisecond
	backoffMax   = time.Minute
	backoffReset = 10 * time.Second
)

// NextDelay is the wait before the next restart, after a run that lasted
// ran and a previous wait of prev (0 before the first restart).
func NextDelay(prev, ran time.Duration) time.Duration {
	if prev == 0 || ran >= backoffReset {
		return backoffMin
	}
	return min(prev*2, backoffMax)
}
