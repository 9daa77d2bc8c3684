//go:build exercise && linux

package exercises

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// docs/08-registry.md's exercises: 6 and 7.

// gate holds the layer downloads of a pull: it answers none until three
// are asked for at once (and waits a second for a fourth, so that a pull
// with no limit shows), or until the first has waited three seconds (a
// pull one layer at a time); after that, every request is answered at
// once. What it records is how many were asked for at once, never how
// long anything took.
type gate struct {
	mu       sync.Mutex
	n, max   int
	third    time.Time
	open     bool
	requests []string
}

func (g *gate) enter(name string) {
	start := time.Now()
	g.mu.Lock()
	g.n++
	g.max = max(g.max, g.n)
	if g.n == 3 && g.third.IsZero() {
		g.third = time.Now()
	}
	g.requests = append(g.requests, name)
	g.mu.Unlock()
	for {
		g.mu.Lock()
		if !g.open && (g.n >= 4 || !g.third.IsZero() && time.Since(g.third) > time.Second || time.Since(start) > 3*time.Second) {
			g.open = true
		}
		open := g.open
		g.mu.Unlock()
		if open {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (g *gate) leave() {
	g.mu.Lock()
	g.n--
	g.mu.Unlock()
}

// gzipLayer is a layer blob holding one file, /name, that says name.
func gzipLayer(t *testing.T, name string) (blob []byte, diffID digest.Digest) {
	t.Helper()
	var plain bytes.Buffer
	w := tar.NewWriter(&plain)
	require.NoError(t, w.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(name) + 1)}))
	_, err := w.Write([]byte(name + "\n"))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, err = zw.Write(plain.Bytes())
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return z.Bytes(), digest.FromBytes(plain.Bytes())
}

// 08-6: pull downloads the layers three at a time, and checks them in
// their order.
func TestExercise08_6(t *testing.T) {
	b := bin(t, "08-image")
	env := testenv.StateEnv(t)
	blobs := map[digest.Digest][]byte{}
	g := &gate{}
	layers := map[digest.Digest]bool{}
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}, RootFS: ocispec.RootFS{Type: "layers"}}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest}
	// Four small layers, and the busybox tree under them, last, to run the
	// image (answered at once: only the four go through the gate).
	base, baseID := treeLayer(t)
	for _, name := range []string{"l1", "l2", "l3", "l4", "busybox"} {
		blob, diffID := base, baseID
		if name != "busybox" {
			blob, diffID = gzipLayer(t, name)
			layers[digest.FromBytes(blob)] = true
		}
		d := digest.FromBytes(blob)
		blobs[d] = blob
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: d, Size: int64(len(blob))})
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
		cfg.History = append(cfg.History, ocispec.History{CreatedBy: "layer " + name})
	}
	cfg.Config.Cmd = []string{"sh"}
	cb, err := json.Marshal(cfg)
	require.NoError(t, err)
	blobs[digest.FromBytes(cb)] = cb
	m.Config = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cb), Size: int64(len(cb))}
	mb, err := json.Marshal(m)
	require.NoError(t, err)

	mux := http.NewServeMux()
	mux.HandleFunc("/v2/", func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case p == "/v2/":
			w.WriteHeader(http.StatusOK)
		case p == "/v2/four/manifests/latest" || p == "/v2/four/manifests/"+digest.FromBytes(mb).String():
			w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
			w.Header().Set("Docker-Content-Digest", digest.FromBytes(mb).String())
			w.Header().Set("Content-Length", fmt.Sprint(len(mb)))
			if r.Method == http.MethodGet {
				_, _ = w.Write(mb)
			}
		case strings.HasPrefix(p, "/v2/four/blobs/"):
			d := digest.Digest(strings.TrimPrefix(p, "/v2/four/blobs/"))
			blob, ok := blobs[d]
			if !ok {
				http.Error(w, `{"errors":[{"code":"BLOB_UNKNOWN"}]}`, http.StatusNotFound)
				return
			}
			if layers[d] && r.Method == http.MethodGet {
				g.enter(d.Encoded()[:12])
				defer g.leave()
			}
			w.Header().Set("Content-Length", fmt.Sprint(len(blob)))
			if r.Method == http.MethodGet {
				_, _ = w.Write(blob)
			}
		default:
			http.NotFound(w, r)
		}
	})
	srv := httptest.NewServer(mux) // on 127.0.0.1, a port of its own
	defer srv.Close()
	name := srv.Listener.Addr().String() + "/four"

	r := testenv.Run(t, env, b, "pull", name)
	require.Equal(t, 0, r.Code, r.String())
	g.mu.Lock()
	most, asked := g.max, len(g.requests)
	g.mu.Unlock()
	assert.Equal(t, 4, asked, "one download per layer the store lacks")
	assert.Equal(t, 3, most, "at most three layers at once, and three while four are left (dockerd's --max-concurrent-downloads): %d at once", most)
	var complete []string
	for _, line := range strings.Split(r.Stdout, "\n") {
		if id, ok := strings.CutSuffix(line, ": Pull complete"); ok {
			complete = append(complete, id)
		}
	}
	var want []string
	for _, d := range m.Layers {
		want = append(want, d.Digest.Encoded()[:12])
	}
	assert.Equal(t, want, complete, "one Pull complete line per layer, in the manifest's order:\n%s", r.Stdout)
	r = testenv.Run(t, env, b, "run", "--net", "none", "--rm", "--image", name, "cat", "/l1", "/l2", "/l3", "/l4")
	assert.Equal(t, "l1\nl2\nl3\nl4\n", r.Stdout, "the pulled image runs, with its four layers: %s", r)
}

// treeLayer is the busybox tree as a gzip'd layer blob, and its diff id.
func treeLayer(t *testing.T) ([]byte, digest.Digest) {
	t.Helper()
	cmd := exec.Command("tar", "-C", testenv.Rootfs(t), "--numeric-owner", "-cf", "-", ".")
	plain, err := cmd.Output()
	require.NoError(t, err, "tar the busybox tree")
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, err = zw.Write(plain)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return z.Bytes(), digest.FromBytes(plain)
}

// registry starts CNCF Distribution's registry (Debian's docker-registry)
// on 127.0.0.1:5055, in the check's own network namespace, with its
// storage in the test's temporary directory.
func registry(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("docker-registry"); err != nil {
		t.Fatal("docker-registry is not installed: sudo make setup installs it")
	}
	d := t.TempDir()
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: 127.0.0.1:5055\n", d)
	require.NoError(t, os.WriteFile(filepath.Join(d, "cfg.yml"), []byte(cfg), 0o644))
	reg := testenv.Start(t, nil, "docker-registry", "serve", filepath.Join(d, "cfg.yml"))
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://127.0.0.1:5055/v2/")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) || reg.Cmd.ProcessState != nil {
			t.Fatalf("docker-registry did not answer on 127.0.0.1:5055: %v", err)
		}
	}
}

// 08-7: a tag moves, a digest does not.
func TestExercise08_7(t *testing.T) {
	a := answer(t, "08-7", 2)
	b := bin(t, "08-image")
	registry(t)
	env, env2 := testenv.StateEnv(t), testenv.StateEnv(t)
	const name = "127.0.0.1:5055/app:v1"
	push := func(word string) string {
		r := testenv.Run(t, env, b, "import", "--change", `CMD ["echo", "`+word+`"]`, testenv.Rootfs(t), name)
		require.Equal(t, 0, r.Code, r.String())
		r = testenv.Run(t, env, b, "push", name)
		require.Equal(t, 0, r.Code, r.String())
		return inspect(t, env, b, name).Digest
	}
	old := push("one")
	push("two")
	byDigest := "127.0.0.1:5055/app@" + old
	run := func(ref string) string {
		r := testenv.Run(t, env2, b, "pull", ref)
		require.Equal(t, 0, r.Code, r.String())
		r = testenv.Run(t, env2, b, "run", "--net", "none", "--rm", "--image", ref)
		require.Equal(t, 0, r.Code, r.String())
		return strings.TrimSpace(r.Stdout)
	}
	first, second := run(byDigest), run(name)
	assert.True(t, same(a[0], first), "line 1: what the image pulled by the old digest prints: %s, not %q", first, a[0])
	assert.True(t, same(a[1], second), "line 2: what the image pulled by the tag prints: %s, not %q", second, a[1])
}
