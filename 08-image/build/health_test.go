//go:build linux

package build

import (
	"strings"
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// HEALTHCHECK as docker build reads it.
func TestHealthcheckInstruction(t *testing.T) {
	parse := func(line string) (*dockerspec.HealthcheckConfig, error) {
		t.Helper()
		df, err := parseDockerfile(strings.NewReader("FROM scratch\n" + line + "\n"))
		require.NoError(t, err)
		return healthcheck(df.stages[0].instrs[0])
	}
	hc, err := parse(`HEALTHCHECK --interval=5s --timeout=2s --start-period=1m --retries=4 CMD wget -q -O- http://localhost/ || exit 1`)
	require.NoError(t, err)
	assert.Equal(t, &dockerspec.HealthcheckConfig{Test: []string{"CMD-SHELL", "wget -q -O- http://localhost/ || exit 1"},
		Interval: 5 * time.Second, Timeout: 2 * time.Second, StartPeriod: time.Minute, Retries: 4}, hc)
	hc, err = parse(`HEALTHCHECK CMD ["cat", "/tmp/ok"]`)
	require.NoError(t, err)
	assert.Equal(t, []string{"CMD", "cat", "/tmp/ok"}, hc.Test)
	hc, err = parse(`HEALTHCHECK NONE`)
	require.NoError(t, err)
	assert.Equal(t, []string{"NONE"}, hc.Test)
	for line, msg := range map[string]string{
		`HEALTHCHECK NONE CMD true`:            "NONE takes no arguments",
		`HEALTHCHECK true`:                     "needs CMD and a command, or NONE",
		`HEALTHCHECK --interval=soon CMD true`: "not a duration",
		`HEALTHCHECK --interval=1ns CMD true`:  "cannot be less than 1ms",
		`HEALTHCHECK --retries=-1 CMD true`:    "want a count",
	} {
		_, err := parse(line)
		assert.ErrorContains(t, err, msg, line)
	}
	_, err = parseDockerfile(strings.NewReader("FROM scratch\nHEALTHCHECK --vital=1 CMD true\n"))
	assert.ErrorContains(t, err, "--vital is not supported")
}
