//go:build linux

package cli_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// screen plays what a terminal was sent, as far as progress draws: text,
// \r, \n, ESC[nA (up), ESC[nB (down), ESC[2K (clear the line); and
// returns the lines it ends with.
func screen(out string) string {
	var lines []string
	row, col := 0, 0
	put := func(r rune) {
		for len(lines) <= row {
			lines = append(lines, "")
		}
		l := []rune(lines[row])
		for len(l) < col {
			l = append(l, ' ')
		}
		if col < len(l) {
			l[col] = r
		} else {
			l = append(l, r)
		}
		lines[row] = string(l)
		col++
	}
	esc := regexp.MustCompile(`^\x1b\[(\d*)([ABK])`)
	for i := 0; i < len(out); {
		if m := esc.FindStringSubmatch(out[i:]); m != nil {
			n, _ := strconv.Atoi(m[1])
			switch m[2] {
			case "A":
				row -= n
			case "B":
				row += n
			case "K":
				for len(lines) <= row {
					lines = append(lines, "")
				}
				lines[row] = ""
			}
			i += len(m[0])
			continue
		}
		switch c := out[i]; c {
		case '\r':
			col = 0
		case '\n':
			row, col = row+1, 0
		default:
			put(rune(c))
		}
		i++
	}
	return strings.Join(lines, "\n")
}

// lastStatuses is what a terminal shows of a pipe's lines: a layer's
// statuses on one line, the first one's place, the last one's text.
func lastStatuses(pipe string) string {
	var lines []string
	at := map[string]int{}
	for _, l := range strings.Split(pipe, "\n") {
		id, _, ok := strings.Cut(l, ": ")
		if ok && regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(id) {
			if i, seen := at[id]; seen {
				lines[i] = l
				continue
			}
			at[id] = len(lines)
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n")
}

// Pull, push and load print Docker's lines on a pipe, exactly, with no
// escape sequence; on a terminal, a line per layer redrawn in place with
// a bar, which ends as the same lines.
func TestProgress(t *testing.T) {
	h := newHost(t)
	reg := startAuthRegistry(t)
	h.env = append(h.env, "BERTH_REGISTRY_CREDS=me:secret")
	name := reg + "/p/img"
	h.ok("import", h.rootf, "img")
	h.ok("tag", "img", name)
	// The layer's short id is its blob's, in the manifest.
	manifest := h.ok("image", "inspect", "-f", "{{.Descriptor.digest}}", name)
	blob, err := os.ReadFile(filepath.Join(h.data, "images", "blobs", "sha256", strings.TrimPrefix(manifest, "sha256:")))
	require.NoError(t, err)
	layer := regexp.MustCompile(`"layers":\s*\[\s*\{\s*"mediaType":\s*"[^"]*",\s*"digest":\s*"sha256:([0-9a-f]{12})`).FindStringSubmatch(string(blob))
	require.NotNil(t, layer, string(blob))
	id := layer[1]

	// A pipe: exactly these lines.
	push := h.run("push", name)
	require.Equal(t, 0, push.Code, push.String())
	assert.Regexp(t, `^Using default tag: latest\nThe push refers to repository \[`+regexp.QuoteMeta(reg)+`/p/img\]\n`+
		id+`: Preparing\n`+id+`: Pushed\nlatest: digest: sha256:[0-9a-f]{64} size: \d+\n$`, push.Stdout)
	h.ok("rmi", name, "img")
	pull := h.run("pull", name)
	require.Equal(t, 0, pull.Code, pull.String())
	assert.Regexp(t, `^Using default tag: latest\nlatest: Pulling from p/img\n`+id+`: Pulling fs layer\n`+
		id+`: Verifying Checksum\n`+id+`: Download complete\n`+id+`: Pull complete\n`+
		`Digest: sha256:[0-9a-f]{64}\nStatus: Downloaded newer image for `+regexp.QuoteMeta(name)+`:latest\n`+regexp.QuoteMeta(name)+`:latest\n$`, pull.Stdout)
	tarball := filepath.Join(t.TempDir(), "img.tar")
	h.ok("save", "-o", tarball, name)
	h.ok("rmi", name)
	load := h.run("load", "-i", tarball)
	require.Equal(t, 0, load.Code, load.String())
	assert.Equal(t, "Loaded image: "+name+":latest\n", load.Stdout)
	for _, out := range []string{push.Stdout, pull.Stdout, load.Stdout} {
		assert.NotContains(t, out, "\x1b", "an escape sequence on a pipe")
	}

	// A terminal: the bars were drawn, and the screen ends as the pipe's
	// lines.
	term := func(args ...string) string {
		tm := testenv.StartTerminal(t, h.env, 24, 200, h.bin, args...)
		out, code := tm.Wait()
		require.Equal(t, 0, code, out)
		return out
	}
	h.ok("rmi", name)
	out := term("pull", name)
	assert.Contains(t, out, id+": Pulling fs layer")
	assert.Regexp(t, id+`: Downloading \[=+>\] +[0-9.]+[kM]B/[0-9.]+[kM]B`, out)
	assert.Contains(t, out, "\x1b[1A\r\x1b[2K"+id+": Pull complete\r\x1b[1B")
	assert.Equal(t, lastStatuses(strings.TrimSuffix(pull.Stdout, "\n")), screen(out))

	other := reg + "/p/other"
	h.ok("tag", name, other)
	out = term("push", other)
	assert.Contains(t, out, id+": Preparing")
	assert.Regexp(t, id+`: Pushing \[=+>\] +[0-9.]+[kM]B/[0-9.]+[kM]B`, out)
	assert.Regexp(t, `^Using default tag: latest\nThe push refers to repository \[`+regexp.QuoteMeta(other)+`\]\n`+
		id+`: Pushed\nlatest: digest: sha256:[0-9a-f]{64} size: \d+$`, screen(out))

	h.ok("rmi", name, other)
	out = term("load", "-i", tarball)
	assert.Regexp(t, `Loading \[=+>\] +[0-9.]+[kM]B/[0-9.]+[kM]B`, out)
	assert.Regexp(t, `Loading \[=+>\] +[0-9.]+[kM]B/[0-9.]+[kM]B\nLoaded image: `+regexp.QuoteMeta(name)+`:latest$`, screen(out))
}
