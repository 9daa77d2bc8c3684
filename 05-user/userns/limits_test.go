//go:build linux

package userns

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
)

func TestLimits(t *testing.T) {
	assert.Equal(t, "", limits(nil))
	assert.Equal(t, "", limits(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}), "a device list is not a limit")
	lim := int64(64 << 20)
	pids := int64(20)
	assert.Equal(t, "memory, pids", limits(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &lim}, Pids: &specs.LinuxPids{Limit: &pids}}))
}
