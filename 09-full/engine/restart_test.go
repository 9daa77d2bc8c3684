package engine

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRestartPolicy(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want RestartPolicy
		err  string
	}{
		{"", RestartPolicy{Name: "no"}, ""},
		{"no", RestartPolicy{Name: "no"}, ""},
		{"always", RestartPolicy{Name: "always"}, ""},
		{"unless-stopped", RestartPolicy{Name: "unless-stopped"}, ""},
		{"on-failure", RestartPolicy{Name: "on-failure"}, ""},
		{"on-failure:2", RestartPolicy{Name: "on-failure", MaximumRetryCount: 2}, ""},
		{"on-failure:x", RestartPolicy{}, "positive integer"},
		{"always:3", RestartPolicy{}, "only be used with 'on-failure'"},
		{"sometimes", RestartPolicy{}, "use no, always"},
	} {
		got, err := ParseRestartPolicy(tc.in)
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
	p := RestartPolicy{Name: "on-failure", MaximumRetryCount: 2}
	assert.True(t, p.ShouldRestart(1, 0, false))
	assert.True(t, p.ShouldRestart(1, 1, false))
	assert.False(t, p.ShouldRestart(1, 2, false), "a third failure ends it: three runs in all")
	assert.False(t, p.ShouldRestart(0, 0, false))
	assert.False(t, RestartPolicy{Name: "always"}.ShouldRestart(0, 9, true), "stop ends every policy")
	assert.True(t, RestartPolicy{Name: "always"}.ShouldRestart(0, 9, false))
	assert.False(t, RestartPolicy{Name: "no"}.ShouldRestart(1, 0, false))
	assert.Equal(t, "on-failure:2", p.String())
}

func TestNextDelay(t *testing.T) {
	d := NextDelay(0, time.Second)
	assert.Equal(t, 100*time.Millisecond, d)
	d = NextDelay(d, time.Second)
	assert.Equal(t, 200*time.Millisecond, d)
	d = NextDelay(d, time.Second)
	assert.Equal(t, 400*time.Millisecond, d)
	assert.Equal(t, 100*time.Millisecond, NextDelay(d, 11*time.Second), "a long run starts over")
	assert.Equal(t, time.Minute, NextDelay(50*time.Second, 0))
}
