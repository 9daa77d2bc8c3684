package testenv

import (
	"strings"
	"testing"
)

// A Stage is a stage binary with state and data roots of its own, as the
// integration tests of stages 07 and later drive it: built once, run as
// root, never touching /run/berth or /var/lib/berth.
type Stage struct {
	T    testing.TB
	Bin  string   // the stage binary
	Vars []string // its environment: BERTH_ROOT, BERTH_DATA_ROOT, BERTH_ROOTFS (StateEnv)
	Data string   // the data root
}

// NewStage builds the stage (Binary) and gives it private roots. It skips
// without root, and fails without the busybox tree.
func NewStage(t testing.TB, stage string) *Stage {
	t.Helper()
	RequireRoot(t)
	Rootfs(t)
	s := &Stage{T: t, Bin: Binary(t, stage), Vars: StateEnv(t)}
	for _, kv := range s.Vars {
		if v, ok := strings.CutPrefix(kv, "BERTH_DATA_ROOT="); ok {
			s.Data = v
		}
	}
	return s
}

// Run runs the stage with args.
func (s *Stage) Run(args ...string) Result {
	s.T.Helper()
	return Run(s.T, s.Vars, s.Bin, args...)
}

// OK runs the stage with args, fails the test unless it exits 0, and
// returns its stdout.
func (s *Stage) OK(args ...string) string {
	s.T.Helper()
	r := s.Run(args...)
	if r.Code != 0 {
		s.T.Fatalf("%s %s: %s", s.Bin, strings.Join(args, " "), r)
	}
	return r.Stdout
}
