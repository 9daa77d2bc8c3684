package store

import "time"

// Health statuses, as Docker names them.
const (
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// MaxHealthLog is how many results Health keeps (Docker keeps 5).
const MaxHealthLog = 5

// Health is what the health checks of one run of a container found, as
// Docker's State.Health: the status, the count of failures in a row, and
// the last results.
type Health struct {
	Status        string         `json:"status"`
	FailingStreak int            `json:"failingStreak"`
	Log           []HealthResult `json:"log,omitempty"`
	// Run is the StartedAt of the run these results are of: a restarted
	// container starts again from "starting".
	Run time.Time `json:"run"`
}

// A HealthResult is one check.
type HealthResult struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	ExitCode int       `json:"exitCode"`
	Output   string    `json:"output"`
}
