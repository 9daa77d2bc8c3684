//go:build linux

package registry_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/08-image/registry"
	"berth/08-image/store"
)

// Unit tests of the client's pure logic, and of the protocol against a
// registry played by httptest on 127.0.0.1.

func TestParseChallenge(t *testing.T) {
	for _, tc := range []struct {
		in     string
		ok     bool
		scheme string
		params map[string]string
	}{
		{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"`, true, "bearer",
			map[string]string{"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:library/busybox:pull"}},
		{`Bearer realm="https://r.example/token", scope="repository:a/b:pull,push", service="r.example"`, true, "bearer",
			map[string]string{"realm": "https://r.example/token", "scope": "repository:a/b:pull,push", "service": "r.example"}},
		{`Basic realm="Registry Realm"`, true, "basic", map[string]string{"realm": "Registry Realm"}},
		{`bearer realm=https://x/token,service=x`, true, "bearer", map[string]string{"realm": "https://x/token", "service": "x"}},
		{`Bearer realm="a \"quoted\" realm"`, true, "bearer", map[string]string{"realm": `a "quoted" realm`}},
		{`Negotiate`, false, "negotiate", map[string]string{}},
		{``, false, "", nil},
	} {
		ch, ok := registry.ParseChallenge(tc.in)
		assert.Equal(t, tc.ok, ok, tc.in)
		if tc.params != nil {
			assert.Equal(t, tc.scheme, ch.Scheme, tc.in)
			assert.Equal(t, tc.params, ch.Params, tc.in)
		}
	}
}

func TestSchemeAndHost(t *testing.T) {
	c := &registry.Client{Insecure: []string{"reg.lan:5000", "plain.lan", "10.0.0.0/8"}}
	for host, want := range map[string]string{
		"registry-1.docker.io": "https",
		"quay.io":              "https",
		"127.0.0.1:5000":       "http",
		"127.1.2.3":            "http",
		"localhost:5000":       "http",
		"[::1]:5000":           "http",
		"reg.lan:5000":         "http",
		"reg.lan:5001":         "https", // the entry names one port
		"reg.lan":              "https",
		"plain.lan:443":        "http", // no port: any port
		"10.1.2.3:5000":        "http", // in the CIDR
		"11.1.2.3:5000":        "https",
	} {
		assert.Equal(t, want, c.Scheme(host), host)
	}
	assert.Equal(t, "registry-1.docker.io", registry.Host("docker.io"))
	assert.Equal(t, "ghcr.io", registry.Host("ghcr.io"))
	r := c.Repository("docker.io", "library/busybox")
	assert.Equal(t, "https://registry-1.docker.io/v2/library/busybox/manifests/latest", r.URL("manifests/latest"))
}

func TestPickManifest(t *testing.T) {
	e := func(os, arch, variant string) ocispec.Descriptor {
		return ocispec.Descriptor{Digest: digest.FromString(os + arch + variant), Platform: &ocispec.Platform{OS: os, Architecture: arch, Variant: variant}}
	}
	attest := ocispec.Descriptor{Digest: digest.FromString("att"), Platform: &ocispec.Platform{OS: "unknown", Architecture: "unknown"},
		Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest"}}
	idx := ocispec.Index{Manifests: []ocispec.Descriptor{
		e("linux", "arm", "v6"), e("linux", "arm", "v7"), e("linux", "arm64", "v8"), e("linux", "amd64", ""),
		e("windows", "amd64", ""), attest,
	}}
	for _, tc := range []struct {
		want ocispec.Platform
		pick ocispec.Descriptor
	}{
		{ocispec.Platform{OS: "linux", Architecture: "amd64"}, idx.Manifests[3]},
		{ocispec.Platform{OS: "linux", Architecture: "arm64"}, idx.Manifests[2]}, // v8 is arm64's default
		{ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, idx.Manifests[2]},
		{ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, idx.Manifests[1]},
		{ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}, idx.Manifests[0]},
		{ocispec.Platform{OS: "windows", Architecture: "amd64"}, idx.Manifests[4]},
	} {
		got, err := registry.PickManifest(idx, tc.want)
		require.NoError(t, err, registry.PlatformString(tc.want))
		assert.Equal(t, tc.pick.Digest, got.Digest, registry.PlatformString(tc.want))
	}
	// An arm v7 CPU runs v6 code, not the reverse.
	older := ocispec.Index{Manifests: []ocispec.Descriptor{e("linux", "arm", "v6")}}
	got, err := registry.PickManifest(older, ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"})
	require.NoError(t, err)
	assert.Equal(t, older.Manifests[0].Digest, got.Digest)
	newer := ocispec.Index{Manifests: []ocispec.Descriptor{e("linux", "arm", "v7")}}
	_, err = registry.PickManifest(newer, ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v6"})
	assert.EqualError(t, err, "no image for linux/arm/v6 in its index (it has linux/arm/v7)")

	_, err = registry.PickManifest(idx, ocispec.Platform{OS: "linux", Architecture: "riscv64"})
	assert.EqualError(t, err, "no image for linux/riscv64 in its index (it has linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64/v8, windows/amd64)")
	_, err = registry.PickManifest(ocispec.Index{}, registry.HostPlatform())
	assert.ErrorContains(t, err, "(it has no platform)")

	p, err := registry.ParsePlatform("linux/aarch64")
	require.NoError(t, err)
	assert.Equal(t, ocispec.Platform{OS: "linux", Architecture: "arm64"}, p)
	_, err = registry.ParsePlatform("arm64")
	assert.Error(t, err)
}

// fakeRegistry serves one repository, lib/img, the way Docker Hub does:
// every /v2/ call needs a token from /token, and blobs are redirects to
// /storage/, where storage serves them.
type fakeRegistry struct {
	srv       *httptest.Server
	mu        sync.Mutex
	manifests map[string]fakeManifest // by tag and by digest
	blobs     map[digest.Digest][]byte
	scopes    []string // what /token was asked for
	requests  []string
	// tamper, if set, changes a response before it is sent.
	tamper func(w http.ResponseWriter, r *http.Request, body []byte) []byte
}

type fakeManifest struct {
	mediaType string
	body      []byte
}

func newFakeRegistry(t *testing.T) *fakeRegistry {
	f := &fakeRegistry{manifests: map[string]fakeManifest{}, blobs: map[digest.Digest][]byte{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeRegistry) host() string { return strings.TrimPrefix(f.srv.URL, "http://") }

func (f *fakeRegistry) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	f.mu.Unlock()
	switch p := r.URL.Path; {
	case p == "/token":
		f.mu.Lock()
		f.scopes = append(f.scopes, r.URL.Query().Get("service")+" "+strings.Join(r.URL.Query()["scope"], " "))
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"token": "t0k3n", "expires_in": 300})
	case strings.HasPrefix(p, "/storage/"):
		b, ok := f.blobs[digest.Digest(strings.TrimPrefix(p, "/storage/"))]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(f.send(w, r, b))
	case r.Header.Get("Authorization") != "Bearer t0k3n":
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+f.srv.URL+`/token",service="fake.registry",scope="repository:lib/img:pull"`)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
	case strings.HasPrefix(p, "/v2/lib/img/manifests/"):
		m, ok := f.manifests[strings.TrimPrefix(p, "/v2/lib/img/manifests/")]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`))
			return
		}
		w.Header().Set("Content-Type", m.mediaType)
		w.Header().Set("Docker-Content-Digest", digest.FromBytes(m.body).String())
		_, _ = w.Write(f.send(w, r, m.body))
	case strings.HasPrefix(p, "/v2/lib/img/blobs/"):
		http.Redirect(w, r, "/storage/"+strings.TrimPrefix(p, "/v2/lib/img/blobs/"), http.StatusTemporaryRedirect)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeRegistry) send(w http.ResponseWriter, r *http.Request, b []byte) []byte {
	if f.tamper != nil {
		return f.tamper(w, r, b)
	}
	return b
}

func (f *fakeRegistry) blob(b []byte, mediaType string) ocispec.Descriptor {
	d := digest.FromBytes(b)
	f.blobs[d] = b
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
}

func (f *fakeRegistry) manifest(ref string, mediaType string, v any) ocispec.Descriptor {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	d := digest.FromBytes(b)
	f.manifests[ref] = fakeManifest{mediaType, b}
	f.manifests[d.String()] = fakeManifest{mediaType, b}
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
}

// addImage adds a one-file image for arch and returns its manifest's
// descriptor and its config's digest (the image id).
func (f *fakeRegistry) addImage(t *testing.T, ref, arch string) (ocispec.Descriptor, digest.Digest) {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	content := []byte("hello from " + arch + "\n")
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "hello", Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}))
	_, _ = tw.Write(content)
	require.NoError(t, tw.Close())
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(tb.Bytes())
	require.NoError(t, zw.Close())
	layer := f.blob(gz.Bytes(), ocispec.MediaTypeImageLayerGzip)
	cfg, err := json.Marshal(ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: arch},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(tb.Bytes())}}})
	require.NoError(t, err)
	config := f.blob(cfg, ocispec.MediaTypeImageConfig)
	m := f.manifest(ref, ocispec.MediaTypeImageManifest, ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: []ocispec.Descriptor{layer}})
	return m, config.Digest
}

func pullFake(t *testing.T, f *fakeRegistry, ref string) (*store.Store, *registry.Pulled, string, error) {
	s := store.NewStore(t.TempDir())
	var out bytes.Buffer
	p, err := registry.Pull(context.Background(), s, &registry.Client{}, f.host()+"/lib/img"+ref, registry.PullOptions{Out: &out})
	return s, p, out.String(), err
}

// Docker Hub's flow: 401 with a Bearer challenge, an anonymous token for
// the scope it names, the request again with the token; blobs come from
// wherever the registry redirects.
func TestPullTokenAndRedirect(t *testing.T) {
	f := newFakeRegistry(t)
	mdesc, id := f.addImage(t, "v1", runtime.GOARCH)
	s, p, out, err := pullFake(t, f, ":v1")
	require.NoError(t, err, out)
	assert.Equal(t, mdesc.Digest, p.Digest)
	assert.Equal(t, id, p.Image.ID())
	assert.Equal(t, []string{"fake.registry repository:lib/img:pull"}, f.scopes, "one token, reused")
	img, err := s.Get(f.host() + "/lib/img:v1")
	require.NoError(t, err)
	assert.Equal(t, mdesc.Digest, img.Descriptor.Digest)
	assert.Contains(t, f.requests, "GET /storage/"+img.Manifest.Layers[0].Digest.String())
	dirs, err := s.Unpack(context.Background(), img)
	require.NoError(t, err)
	assert.FileExists(t, dirs[0]+"/hello")
}

func TestPullMultiPlatformFake(t *testing.T) {
	f := newFakeRegistry(t)
	other := "s390x"
	if runtime.GOARCH == other {
		other = "ppc64le"
	}
	mOther, _ := f.addImage(t, "other", other)
	mHere, idHere := f.addImage(t, "here", runtime.GOARCH)
	mOther.Platform = &ocispec.Platform{OS: "linux", Architecture: other}
	mHere.Platform = &ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	idx := f.manifest("multi", store.MediaTypeDockerManifestList, ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: store.MediaTypeDockerManifestList, Manifests: []ocispec.Descriptor{mOther, mHere}})
	s, p, out, err := pullFake(t, f, ":multi")
	require.NoError(t, err, out)
	assert.Equal(t, idx.Digest, p.Digest)
	assert.Equal(t, idHere, p.Image.ID())
	assert.Contains(t, out, "Digest: "+idx.Digest.String()+"\n")
	// The name with the index's digest finds the image too.
	_, p2, out, err := pullFake(t, f, "@"+idx.Digest.String())
	require.NoError(t, err, out)
	assert.Equal(t, idHere, p2.Image.ID())
	_, err = s.Get(f.host() + "/lib/img:multi")
	require.NoError(t, err)
}

// What a pull refuses, before anything is named.
func TestPullRefusesFake(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		setup      func(f *fakeRegistry) string // returns the reference to pull
	}{
		{"unknown tag", "manifest for …/lib/img:nope not found: manifest unknown", func(f *fakeRegistry) string { return ":nope" }},
		{"header digest", "does not match its digest", func(f *fakeRegistry) string {
			f.tamper = func(w http.ResponseWriter, r *http.Request, b []byte) []byte {
				if strings.Contains(r.URL.Path, "/manifests/") {
					w.Header().Set("Docker-Content-Digest", digest.FromString("other").String())
				}
				return b
			}
			return ":v1"
		}},
		{"digest in the name", "does not match its digest", func(f *fakeRegistry) string {
			d := digest.FromString("something else")
			f.manifests[d.String()] = f.manifests["v1"]
			return "@" + d.String()
		}},
		{"schema 1", "schema 1 manifests (Docker's format before 2016) are not supported", func(f *fakeRegistry) string {
			f.manifests["old"] = fakeManifest{"application/vnd.docker.distribution.manifest.v1+prettyjws", []byte(`{"schemaVersion":1,"name":"lib/img","tag":"old","fsLayers":[]}`)}
			return ":old"
		}},
		{"too large", "over the limit of 4194304 bytes", func(f *fakeRegistry) string {
			f.manifests["big"] = fakeManifest{ocispec.MediaTypeImageManifest, append([]byte(`{"schemaVersion":2,"x":"`), bytes.Repeat([]byte("a"), 4<<20)...)}
			return ":big"
		}},
		{"a foreign layer", `layer media type "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" is not a layer tarball berth can unpack`, func(f *fakeRegistry) string {
			m := f.manifests["v1"]
			f.manifests["foreign"] = fakeManifest{m.mediaType, bytes.ReplaceAll(m.body, []byte(ocispec.MediaTypeImageLayerGzip), []byte("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"))}
			return ":foreign"
		}},
		{"an artifact", `config media type "application/vnd.cncf.helm.config.v1+json": not a container image`, func(f *fakeRegistry) string {
			m := f.manifests["v1"]
			f.manifests["helm"] = fakeManifest{m.mediaType, bytes.ReplaceAll(m.body, []byte(ocispec.MediaTypeImageConfig), []byte("application/vnd.cncf.helm.config.v1+json"))}
			return ":helm"
		}},
		{"rootfs.type is not layers", `rootfs.type is "foo", not "layers": refused`, func(f *fakeRegistry) string {
			m := f.manifests["v1"]
			var man ocispec.Manifest
			if err := json.Unmarshal(m.body, &man); err != nil {
				panic(err)
			}
			odd := bytes.Replace(f.blobs[man.Config.Digest], []byte(`"type":"layers"`), []byte(`"type":"foo"`), 1)
			man.Config = f.blob(odd, ocispec.MediaTypeImageConfig)
			f.manifest("odd", m.mediaType, man)
			return ":odd"
		}},
		{"blob longer than its descriptor", "the registry sends", func(f *fakeRegistry) string {
			f.tamper = func(w http.ResponseWriter, r *http.Request, b []byte) []byte {
				if strings.HasPrefix(r.URL.Path, "/storage/") {
					return append(b, 0)
				}
				return b
			}
			return ":v1"
		}},
		{"blob longer, sent without a length", "is longer than its descriptor says", func(f *fakeRegistry) string {
			f.tamper = func(w http.ResponseWriter, r *http.Request, b []byte) []byte {
				if strings.HasPrefix(r.URL.Path, "/storage/") {
					w.WriteHeader(http.StatusOK)
					w.(http.Flusher).Flush() // chunked: no Content-Length to check first
					return append(b, 0)
				}
				return b
			}
			return ":v1"
		}},
		{"blob shorter, sent without a length", "bytes short of its descriptor's size", func(f *fakeRegistry) string {
			f.tamper = func(w http.ResponseWriter, r *http.Request, b []byte) []byte {
				if strings.HasPrefix(r.URL.Path, "/storage/") {
					w.WriteHeader(http.StatusOK)
					w.(http.Flusher).Flush()
					return b[:len(b)-1]
				}
				return b
			}
			return ":v1"
		}},
		{"blob tampered", "as it was named: refused", func(f *fakeRegistry) string {
			f.tamper = func(w http.ResponseWriter, r *http.Request, b []byte) []byte {
				if strings.HasPrefix(r.URL.Path, "/storage/") {
					b = bytes.Clone(b)
					b[len(b)-1] ^= 1
				}
				return b
			}
			return ":v1"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeRegistry(t)
			f.addImage(t, "v1", runtime.GOARCH)
			ref := tc.setup(f)
			s, _, out, err := pullFake(t, f, ref)
			require.Error(t, err, out)
			want := strings.ReplaceAll(tc.want, "…", f.host())
			assert.Contains(t, err.Error(), want)
			assert.NotContains(t, err.Error(), "\n")
			imgs, lerr := s.List()
			require.NoError(t, lerr)
			assert.Empty(t, imgs, "nothing named")
			if tc.name == "a foreign layer" || tc.name == "an artifact" {
				for _, r := range f.requests {
					assert.NotContains(t, r, "/storage/", "refused before any download")
				}
			}
		})
	}
}

// Basic auth: a private registry that wants a user name and password.
func TestBasicAuth(t *testing.T) {
	body := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "me" || p != "secret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="private"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	_, _, err := (&registry.Client{}).Repository(host, "a/b").GetManifest(context.Background(), "latest")
	assert.EqualError(t, err, "registry "+host+" wants a user name and password (--creds USER:PASSWORD)")
	_, _, err = (&registry.Client{Username: "me", Password: "wrong"}).Repository(host, "a/b").GetManifest(context.Background(), "latest")
	assert.EqualError(t, err, "401 unauthorized")
	desc, b, err := (&registry.Client{Username: "me", Password: "secret"}).Repository(host, "a/b").GetManifest(context.Background(), "latest")
	require.NoError(t, err)
	assert.Equal(t, body, b)
	assert.Equal(t, ocispec.MediaTypeImageIndex, desc.MediaType)
	assert.Equal(t, digest.FromBytes(body), desc.Digest)
}

// A config that names the diff id of a layer the store has unpacked
// already, with a blob of other content: the blob is still checked, so the
// image is refused and gets no name (it would borrow the other image's
// layer, and save or push would pass it on).
func TestPullRefusesABorrowedDiffID(t *testing.T) {
	f := newFakeRegistry(t)
	f.addImage(t, "good", runtime.GOARCH)
	s := store.NewStore(t.TempDir())
	var out bytes.Buffer
	good, err := registry.Pull(context.Background(), s, &registry.Client{}, f.host()+"/lib/img:good", registry.PullOptions{Out: &out})
	require.NoError(t, err, out.String())

	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	evil := []byte("not the good layer\n")
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "evil", Mode: 0o644, Size: int64(len(evil)), Typeflag: tar.TypeReg}))
	_, _ = tw.Write(evil)
	require.NoError(t, tw.Close())
	layer := f.blob(tb.Bytes(), ocispec.MediaTypeImageLayer)
	cfg, err := json.Marshal(ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: good.Image.Config.RootFS.DiffIDs}})
	require.NoError(t, err)
	config := f.blob(cfg, ocispec.MediaTypeImageConfig)
	f.manifest("borrow", ocispec.MediaTypeImageManifest, ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest, Config: config, Layers: []ocispec.Descriptor{layer}})

	_, err = registry.Pull(context.Background(), s, &registry.Client{}, f.host()+"/lib/img:borrow", registry.PullOptions{Out: &out})
	require.ErrorContains(t, err, "as the image config says: refused")
	_, err = s.Get(f.host() + "/lib/img:borrow")
	require.ErrorIs(t, err, store.ErrNotFound)
}

// addLayers adds an image of one gzip'd layer per file content (each file
// "layerN" in its layer) and returns its manifest's descriptor.
func (f *fakeRegistry) addLayers(t *testing.T, ref string, contents ...[]byte) ocispec.Descriptor {
	var layers []ocispec.Descriptor
	var diffIDs []digest.Digest
	for i, content := range contents {
		var tb bytes.Buffer
		tw := tar.NewWriter(&tb)
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: fmt.Sprint("layer", i+1), Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}))
		_, _ = tw.Write(content)
		require.NoError(t, tw.Close())
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		_, _ = zw.Write(tb.Bytes())
		require.NoError(t, zw.Close())
		layers = append(layers, f.blob(gz.Bytes(), ocispec.MediaTypeImageLayerGzip))
		diffIDs = append(diffIDs, digest.FromBytes(tb.Bytes()))
	}
	cfg, err := json.Marshal(ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}})
	require.NoError(t, err)
	return f.manifest(ref, ocispec.MediaTypeImageManifest, ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest, Config: f.blob(cfg, ocispec.MediaTypeImageConfig), Layers: layers})
}

// assertNothingPulled: no name, no blob, no layer unpacked, no record.
func assertNothingPulled(t *testing.T, s *store.Store) {
	t.Helper()
	imgs, err := s.List()
	require.NoError(t, err)
	assert.Empty(t, imgs, "nothing named")
	for _, dir := range []string{filepath.Join(s.Root, "blobs", "sha256"), filepath.Join(s.Root, "ingest"), filepath.Join(s.Root, "diffids"), filepath.Join(s.Layers.Root, "sha256")} {
		names, err := os.ReadDir(dir)
		if !errors.Is(err, os.ErrNotExist) {
			require.NoError(t, err)
		}
		assert.Empty(t, names, dir)
	}
}

// One bound for the whole image: two layers of 600 KiB each (a few KiB
// gzip'd) are each under --max-image-size 1MiB and over it together; the
// pull is refused and takes back what it downloaded, before any layer is
// unpacked. Under 2 MiB it pulls.
func TestPullImageBound(t *testing.T) {
	f := newFakeRegistry(t)
	f.addLayers(t, "big", make([]byte, 600<<10), make([]byte, 600<<10))
	s := store.NewStore(t.TempDir())
	s.MaxImageSize = 1 << 20
	var out bytes.Buffer
	_, err := registry.Pull(context.Background(), s, &registry.Client{}, f.host()+"/lib/img:big", registry.PullOptions{Out: &out})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `layer 2 of 2: layer sha256:`)
	assert.Contains(t, err.Error(), `entry "layer2" (600KiB) takes the image's files over --max-image-size 1MiB (600KiB before it): refused`)
	assert.NotContains(t, err.Error(), "\n")
	assertNothingPulled(t, s)

	s.MaxImageSize = 2 << 20
	p, err := registry.Pull(context.Background(), s, &registry.Client{}, f.host()+"/lib/img:big", registry.PullOptions{Out: &out})
	require.NoError(t, err)
	dirs, err := s.Unpack(context.Background(), p.Image)
	require.NoError(t, err)
	assert.Len(t, dirs, 2)
}

// What the layers take to download is bounded from the manifest, before
// the first byte: a registry cannot make a pull fill the disk with a
// layer it says is huge.
func TestPullBoundsTheDownload(t *testing.T) {
	f := newFakeRegistry(t)
	m := f.addLayers(t, "v1", []byte("small\n"))
	var man ocispec.Manifest
	require.NoError(t, json.Unmarshal(f.manifests["v1"].body, &man))
	man.Layers[0].Size = 2 << 20 // what a hostile registry may claim
	f.manifest("huge", m.MediaType, man)
	s := store.NewStore(t.TempDir())
	s.MaxImageSize = 1 << 20
	var out bytes.Buffer
	_, err := registry.Pull(context.Background(), s, &registry.Client{}, f.host()+"/lib/img:huge", registry.PullOptions{Out: &out})
	require.ErrorContains(t, err, "its layers take more than --max-image-size 1MiB to download: refused")
	for _, r := range f.requests {
		assert.NotContains(t, r, "/blobs/", "refused before any blob is asked for")
	}
	assertNothingPulled(t, s)
}

// endless writes b, then fills forever until the client goes away.
func endless(w http.ResponseWriter, r *http.Request, b string) {
	_, _ = w.Write([]byte(b))
	chunk := bytes.Repeat([]byte("a"), 64<<10)
	for r.Context().Err() == nil {
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
}

// What a registry or its token service sends into memory is bounded: a
// token answer that never ends is refused at 1 MiB, an error body read
// up to 64 KiB, and neither makes the pull hang or grow.
func TestRegistryAnswersAreBounded(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/token":
			endless(w, r, `{"token":"`)
		case strings.Contains(r.URL.Path, "/manifests/error"):
			w.WriteHeader(http.StatusNotFound)
			endless(w, r, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"`)
		default:
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+srv.URL+`/token",service="s"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	_, _, err := (&registry.Client{}).Repository(host, "a/b").GetManifest(context.Background(), "latest")
	assert.EqualError(t, err, "token for "+host+" from "+host+": the answer is over 1MiB: refused")

	// The error body: read up to its bound, then the error stands alone
	// (not JSON any more, so the status says it).
	open := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		endless(w, r, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"`)
	}))
	defer open.Close()
	_, _, err = (&registry.Client{}).Repository(strings.TrimPrefix(open.URL, "http://"), "a/b").GetManifest(context.Background(), "error")
	assert.EqualError(t, err, "404 not found")
}

// A manifest of more layers than docker's layer store takes (125) is
// refused before any blob is asked for.
func TestPullBoundsTheLayers(t *testing.T) {
	f := newFakeRegistry(t)
	contents := make([][]byte, store.MaxLayers+1)
	for i := range contents {
		contents[i] = []byte(fmt.Sprint(i))
	}
	f.addLayers(t, "deep", contents...)
	s, _, out, err := pullFake(t, f, ":deep")
	require.Error(t, err, out)
	assert.Contains(t, err.Error(), "126 layers, more than 125: refused")
	for _, r := range f.requests {
		assert.NotContains(t, r, "/blobs/", "refused before any blob is asked for")
	}
	assertNothingPulled(t, s)
}
