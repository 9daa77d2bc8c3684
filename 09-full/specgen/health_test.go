//go:build linux

package specgen

import (
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func healthFlags(t *testing.T, args ...string) *HealthOptions {
	t.Helper()
	h := &HealthOptions{}
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	h.AddFlags(fs)
	require.NoError(t, fs.Parse(args))
	return h
}

// The image's HEALTHCHECK, with each flag given over its field.
func TestHealthcheckMerge(t *testing.T) {
	image := &dockerspec.HealthcheckConfig{Test: []string{"CMD", "probe"}, Interval: time.Minute, Retries: 5}
	hc, err := healthcheck(healthFlags(t, "--health-interval", "2s"), image)
	require.NoError(t, err)
	assert.Equal(t, &dockerspec.HealthcheckConfig{Test: []string{"CMD", "probe"}, Interval: 2 * time.Second, Retries: 5}, hc)
	assert.Equal(t, time.Minute, image.Interval, "the image's config is not changed")

	hc, err = healthcheck(healthFlags(t, "--health-cmd", "true", "--health-retries", "1"), image)
	require.NoError(t, err)
	assert.Equal(t, []string{"CMD-SHELL", "true"}, hc.Test)
	assert.Equal(t, 1, hc.Retries)

	hc, err = healthcheck(healthFlags(t, "--no-healthcheck"), image)
	require.NoError(t, err)
	assert.Equal(t, []string{"NONE"}, hc.Test)

	hc, err = healthcheck(healthFlags(t), nil)
	require.NoError(t, err)
	assert.Nil(t, hc)

	_, err = healthcheck(healthFlags(t), &dockerspec.HealthcheckConfig{Test: []string{"CMD"}})
	assert.ErrorContains(t, err, "CMD without a command")
}
