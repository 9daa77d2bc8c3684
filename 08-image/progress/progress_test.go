package progress

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestBar(t *testing.T) {
	assert.Equal(t, "Downloading ["+strings.Repeat("=", 25)+">"+strings.Repeat(" ", 25)+"]    1.5kB/3kB", Bar("Downloading", 1500, 3000))
	assert.Equal(t, "Pushing ["+strings.Repeat("=", 50)+">]      5kB/3kB", Bar("Pushing", 5000, 3000), "the bar never past its end")
	assert.Equal(t, "Loading 1.2MB", Bar("Loading", 1200000, 0), "no total: the count alone")
}

// On a pipe: the plain lines and each layer's statuses, as docker's
// client prints them there; no bar.
func TestPipe(t *testing.T) {
	var b bytes.Buffer
	o := New(&b)
	assert.False(t, o.Terminal())
	o.Printf("latest: Pulling from %s", "busybox")
	o.Status("abc", "Pulling fs layer")
	_, _ = io.ReadAll(o.Reader("abc", "Downloading", strings.NewReader("data"), 4))
	o.Done("abc", "Pull complete")
	o.Printf("Digest: x")
	assert.Equal(t, "latest: Pulling from busybox\nabc: Pulling fs layer\nabc: Pull complete\nDigest: x\n", b.String())
}

// On a terminal: a line per layer; a later status of a layer goes up to
// its line, clears it, writes, and comes back down; a plain line starts
// a new block.
func TestTerminal(t *testing.T) {
	var b bytes.Buffer
	o := &Output{w: &b, tty: true, width: 30}
	o.Status("a", "Pulling fs layer")
	o.Status("b", "Pulling fs layer")
	o.Done("a", "Pull complete")
	o.Done("b", "a status much longer than the terminal is wide")
	o.Printf("Digest: x")
	o.Done("a", "again")
	assert.Equal(t, "\r\x1b[2Ka: Pulling fs layer\n"+
		"\r\x1b[2Kb: Pulling fs layer\n"+
		"\x1b[2A\r\x1b[2Ka: Pull complete\r\x1b[2B"+
		"\x1b[1A\r\x1b[2Kb: a status much longer than \r\x1b[1B"+ // 29 columns: a 30th would wrap
		"Digest: x\n"+
		"\r\x1b[2Ka: again\n", b.String())
}

// The bar is drawn at the total once, not again at the end of the reader.
func TestReaderDrawsTheEndOnce(t *testing.T) {
	var b bytes.Buffer
	o := &Output{w: &b, tty: true, Every: 1 << 62}
	_, _ = io.ReadAll(o.Reader("l", "Loading", strings.NewReader("0123456789"), 10))
	assert.Equal(t, 1, strings.Count(b.String(), "10B/10B"), "%q", b.String())
}
