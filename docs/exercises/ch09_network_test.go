//go:build exercise && linux

package exercises

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Exercise 09-16: network inspect shows each container's MAC address.
func TestExercise09_16(t *testing.T) {
	b := newBerth(t)
	b.ok("network", "create", "--subnet", "10.98.0.0/24", "-o", "com.docker.network.bridge.name=ex0916", "ex0916")
	t.Cleanup(func() {
		if ids := b.run("ps", "-aq").Stdout; ids != "" {
			b.run("rm", "-f", "ex0916a", "ex0916b")
		}
		b.run("network", "rm", "ex0916")
	})
	b.ok(b.on("-d", "--network", "ex0916", "--name", "ex0916a", "--ip", "10.98.0.77", "sleep", "1000")...)
	b.ok(b.on("-d", "--network", "ex0916", "--name", "ex0916b", "--ip", "10.98.0.78", "--mac-address", "92:d0:c6:0a:29:33", "sleep", "1000")...)
	got := strings.Fields(b.ok("network", "inspect", "-f", `{{range .Containers}}{{.Name}}={{.MacAddress}} {{end}}`, "ex0916"))
	assert.Contains(t, got, "ex0916a=02:42:0a:62:00:4d", "the MAC derived from the address, as a container's eth0 has it")
	assert.Contains(t, got, "ex0916b=92:d0:c6:0a:29:33", "the MAC --mac-address gave")
}
