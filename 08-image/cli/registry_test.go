//go:build linux

package cli_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The integration tests run Debian's docker-registry (Distribution 2.8,
// the reference registry of the v2 API) on 127.0.0.1, one per test, and
// berth against it; skopeo (containers/image) is the second opinion.

const registryBin = "/usr/bin/docker-registry"

type testRegistry struct {
	Host string // 127.0.0.1:PORT
	Dir  string // its storage
	log  string
}

// startRegistry runs docker-registry on a free port of 127.0.0.1 with a
// storage directory of its own, and stops it (by its PID) at the end.
func startRegistry(t *testing.T) *testRegistry {
	t.Helper()
	if _, err := os.Stat(registryBin); err != nil {
		t.Skipf("skipped: %s is missing (Debian's docker-registry; sudo make setup installs it)", registryBin)
	}
	dir := t.TempDir()
	r := &testRegistry{Host: fmt.Sprintf("127.0.0.1:%d", freePort(t)), Dir: filepath.Join(dir, "storage"), log: filepath.Join(dir, "registry.log")}
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", r.Dir, r.Host)
	cfgPath := filepath.Join(dir, "config.yml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o644))
	logf, err := os.Create(r.log)
	require.NoError(t, err)
	defer logf.Close()
	cmd := exec.Command(registryBin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		select {
		case <-exited:
			b, _ := os.ReadFile(r.log)
			t.Fatalf("docker-registry exited at start:\n%s", b)
		default:
		}
		if resp, err := http.Get("http://" + r.Host + "/v2/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(r.log)
			t.Fatalf("docker-registry does not answer on %s after 20s:\n%s", r.Host, b)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var accessLine = regexp.MustCompile(`"(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) HTTP/[0-9.]+" (\d+)`)

// requests is the registry's access log so far: "GET /v2/x/blobs/… 200".
// A marker request, logged after every earlier one has been, makes sure
// nothing is still on its way to the log.
func (r *testRegistry) requests(t *testing.T) []string {
	t.Helper()
	marker := fmt.Sprintf("/v2/?marker=%d", time.Now().UnixNano())
	resp, err := http.Get("http://" + r.Host + marker)
	require.NoError(t, err)
	resp.Body.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile(r.log)
		require.NoError(t, err)
		var out []string
		done := false
		for _, m := range accessLine.FindAllStringSubmatch(string(b), -1) {
			if m[2] == marker {
				done = true
				continue
			}
			if !strings.Contains(m[2], "marker=") {
				out = append(out, m[1]+" "+m[2]+" "+m[3])
			}
		}
		if done {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("the registry's access log does not show the marker request:\n%s", b)
		}
	}
}

func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// blobData is where docker-registry's filesystem driver keeps a blob.
func (r *testRegistry) blobData(d digest.Digest) string {
	e := d.Encoded()
	return filepath.Join(r.Dir, "docker", "registry", "v2", "blobs", "sha256", e[:2], e, "data")
}

// putBlob uploads a blob by hand: POST, then PUT ?digest=.
func (r *testRegistry) putBlob(t *testing.T, repo string, b []byte) ocispec.Descriptor {
	t.Helper()
	resp, err := http.Post("http://"+r.Host+"/v2/"+repo+"/blobs/uploads/", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	d := digest.FromBytes(b)
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	req, err := http.NewRequest(http.MethodPut, loc.String(), bytes.NewReader(b))
	require.NoError(t, err)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	return ocispec.Descriptor{Digest: d, Size: int64(len(b))}
}

func (r *testRegistry) putManifest(t *testing.T, repo, ref, mediaType string, b []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, "http://"+r.Host+"/v2/"+repo+"/manifests/"+ref, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Content-Type", mediaType)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body := new(bytes.Buffer)
	_, _ = body.ReadFrom(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode, body.String())
}

// refused: exit 125 and one line on stderr that says why.
func (e *runEnv) refused(args ...string) string {
	e.T.Helper()
	r := e.Run(args...)
	require.Equal(e.T, 125, r.Code, "%v\n%s", args, r)
	require.Equal(e.T, 1, strings.Count(r.Stderr, "\n"), "one line on stderr: %q", r.Stderr)
	require.True(e.T, strings.HasPrefix(r.Stderr, "08-image: "), r.Stderr)
	return strings.TrimSpace(r.Stderr)
}

type inspected struct {
	Name, ID, Digest string
	Manifest         ocispec.Manifest
}

func (e *runEnv) inspect(name string) inspected {
	e.T.Helper()
	var v inspected
	require.NoError(e.T, json.Unmarshal([]byte(e.OK("inspect", name)), &v))
	return v
}

// pushBusybox imports busybox and pushes it as HOST/busybox:latest.
func pushBusybox(t *testing.T, e *runEnv, reg *testRegistry) (inspected, string) {
	t.Helper()
	e.importBusybox()
	img := e.inspect("busybox")
	name := reg.Host + "/busybox"
	e.OK("tag", "busybox", name)
	out := e.OK("push", name)
	m := regexp.MustCompile(`(?m)^latest: digest: (sha256:[0-9a-f]{64}) size: \d+$`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	require.Equal(t, img.Digest, m[1], "the registry names the manifest by the digest it has here")
	return img, name
}

func TestPushPullRoundTrip(t *testing.T) {
	reg := startRegistry(t)
	e := newRunEnv(t)
	img, name := pushBusybox(t, e, reg)

	// Pushing again sends nothing new.
	again := e.OK("push", name)
	assert.Contains(t, again, ": Layer already exists\n")
	assert.NotContains(t, again, ": Pushed")

	// rmi removes the blobs too (GC), so the pull must fetch them.
	e.OK("rmi", name, "busybox")
	require.Equal(t, "", e.OK("images", "-q"))
	blobs, err := os.ReadDir(filepath.Join(e.Data, "images", "blobs", "sha256"))
	require.NoError(t, err)
	require.Empty(t, blobs)

	out := e.OK("pull", name)
	short := regexp.MustCompile(`(?m)^([0-9a-f]{12}): Pull complete$`).FindStringSubmatch(out)
	require.NotNil(t, short, out)
	assert.Equal(t, "Using default tag: latest\n"+
		"latest: Pulling from busybox\n"+
		short[1]+": Pulling fs layer\n"+
		short[1]+": Verifying Checksum\n"+
		short[1]+": Download complete\n"+
		short[1]+": Pull complete\n"+
		"Digest: "+img.Digest+"\n"+
		"Status: Downloaded newer image for "+name+":latest\n"+
		name+":latest\n", out)
	got := e.inspect(name)
	assert.Equal(t, img.ID, got.ID, "the same config: the same image id")
	assert.Equal(t, img.Digest, got.Digest, "the same manifest, byte for byte")
	assert.Equal(t, "hi\n", e.OK("run", "--net", "none", "--rm", "--image", name, "echo", "hi"))

	// A second pull asks for the manifest only.
	before := reg.requests(t)
	out = e.OK("pull", name)
	assert.Equal(t, "Using default tag: latest\n"+
		"latest: Pulling from busybox\n"+
		"Digest: "+img.Digest+"\n"+
		"Status: Image is up to date for "+name+":latest\n"+
		name+":latest\n", out)
	after := reg.requests(t)[len(before):]
	assert.Equal(t, 0, countPrefix(after, "GET /v2/busybox/blobs/"), "no blob downloaded: %v", after)
	assert.Equal(t, 1, countPrefix(after, "GET /v2/busybox/manifests/latest 200"), after)

	// skopeo reads the same digest from the registry.
	var insp struct{ Digest string }
	require.NoError(t, json.Unmarshal([]byte(skopeo(t, "inspect", "--tls-verify=false", "docker://"+name)), &insp))
	assert.Equal(t, img.Digest, insp.Digest)

	// By digest, into an empty store: the name keeps the digest.
	e2 := newRunEnv(t)
	byDigest := name + "@" + img.Digest
	out = e2.OK("pull", byDigest)
	assert.Contains(t, out, img.Digest+": Pulling from busybox\n")
	assert.Contains(t, out, "Status: Downloaded newer image for "+byDigest+"\n")
	got = e2.inspect(byDigest)
	assert.Equal(t, img.ID, got.ID)
	assert.Equal(t, img.Digest, got.Digest)
	assert.Equal(t, "hi\n", e2.OK("run", "--net", "none", "--rm", "--image", byDigest, "echo", "hi"))
}

// An image that skopeo pushed from berth's store (read as the OCI layout
// it is) comes back with berth, the same image.
func TestPullWhatSkopeoPushed(t *testing.T) {
	reg := startRegistry(t)
	e := newRunEnv(t)
	id := e.importBusybox()
	skopeo(t, "copy", "--dest-tls-verify=false",
		"oci:"+filepath.Join(e.Data, "images")+":docker.io/library/busybox:latest", "docker://"+reg.Host+"/other:1")

	e2 := newRunEnv(t)
	name := reg.Host + "/other:1"
	out := e2.OK("pull", name)
	assert.Contains(t, out, "1: Pulling from other\n")
	assert.Contains(t, out, "Status: Downloaded newer image for "+name+"\n")
	assert.Equal(t, id, e2.inspect(name).ID)
	assert.Equal(t, "hi\n", e2.OK("run", "--net", "none", "--rm", "--image", name, "echo", "hi"))
}

// foreignArch is an architecture this machine is not.
func foreignArch() string {
	if runtime.GOARCH == "s390x" {
		return "ppc64le"
	}
	return "s390x"
}

// A multi-platform index: berth takes the entry for this machine, or the
// one --platform names, and says so when there is none.
func TestPullMultiPlatform(t *testing.T) {
	reg := startRegistry(t)
	e := newRunEnv(t)
	img, name := pushBusybox(t, e, reg)
	local, err := os.ReadFile(filepath.Join(e.Data, "images", "blobs", "sha256", digest.Digest(img.Digest).Encoded()))
	require.NoError(t, err)
	var m ocispec.Manifest
	require.NoError(t, json.Unmarshal(local, &m))

	// The same layer, with a config that says s390x.
	cfgBytes, err := os.ReadFile(filepath.Join(e.Data, "images", "blobs", "sha256", m.Config.Digest.Encoded()))
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, json.Unmarshal(cfgBytes, &cfg))
	cfg["architecture"] = foreignArch()
	fb, err := json.Marshal(cfg)
	require.NoError(t, err)
	fcfg := reg.putBlob(t, "busybox", fb)
	fcfg.MediaType = ocispec.MediaTypeImageConfig
	fm := m
	fm.Config = fcfg
	fmb, err := json.Marshal(fm)
	require.NoError(t, err)
	reg.putManifest(t, "busybox", digest.FromBytes(fmb).String(), ocispec.MediaTypeImageManifest, fmb)

	entry := func(b []byte, arch string) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(b), Size: int64(len(b)),
			Platform: &ocispec.Platform{OS: "linux", Architecture: arch}}
	}
	index := func(ds ...ocispec.Descriptor) []byte {
		b, err := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: ds})
		require.NoError(t, err)
		return b
	}
	multi := index(entry(fmb, foreignArch()), entry(local, runtime.GOARCH)) // the foreign one first
	reg.putManifest(t, "busybox", "multi", ocispec.MediaTypeImageIndex, multi)
	reg.putManifest(t, "busybox", "foreign", ocispec.MediaTypeImageIndex, index(entry(fmb, foreignArch())))

	e2 := newRunEnv(t)
	out := e2.OK("pull", name+":multi")
	assert.Contains(t, out, "Digest: "+digest.FromBytes(multi).String()+"\n", "the name resolved to the index")
	got := e2.inspect(name + ":multi")
	assert.Equal(t, img.ID, got.ID, "the entry for linux/"+runtime.GOARCH)
	assert.Equal(t, img.Digest, got.Digest)
	assert.Equal(t, "hi\n", e2.OK("run", "--net", "none", "--rm", "--image", name+":multi", "echo", "hi"))

	e2.OK("pull", "--platform", "linux/"+foreignArch(), name+":multi")
	assert.Equal(t, fcfg.Digest.String(), e2.inspect(name+":multi").ID, "--platform takes the other entry")

	msg := e2.refused("pull", name+":foreign")
	assert.Equal(t, fmt.Sprintf("08-image: pull %s:foreign: no image for %s in its index (it has linux/%s)",
		name, "linux/"+runtime.GOARCH, foreignArch()), msg)
	assert.NotContains(t, e2.OK("images"), "foreign")
}

// What a pull refuses, each in one line, with nothing named after it.
func TestPullRefused(t *testing.T) {
	reg := startRegistry(t)
	e := newRunEnv(t)
	img, name := pushBusybox(t, e, reg)

	e2 := newRunEnv(t)
	assert.Equal(t, "08-image: manifest for "+name+":nope not found: manifest unknown", e2.refused("pull", name+":nope"))

	closed := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	msg := e2.refused("pull", closed+"/busybox")
	assert.Contains(t, msg, "cannot reach the registry http://"+closed+": ")
	assert.Contains(t, msg, "connection refused")

	// One byte of the layer changed in the registry's storage: same size,
	// another digest.
	layer := img.Manifest.Layers[0].Digest
	data := reg.blobData(layer)
	b, err := os.ReadFile(data)
	require.NoError(t, err)
	b[len(b)/2] ^= 0xff
	require.NoError(t, os.WriteFile(data, b, 0o644))
	msg = e2.refused("pull", name)
	assert.Contains(t, msg, "08-image: pull "+name+":latest: layer "+layer.Encoded()[:12]+": ")
	assert.Contains(t, msg, "not "+layer.String()+" as it was named: refused")
	assert.Equal(t, "", e2.OK("images", "-q"), "nothing named")
	assert.NoFileExists(t, filepath.Join(e2.Data, "images", "blobs", "sha256", layer.Encoded()))
}
