//go:build linux

// Package registry pulls images from a registry into the store and pushes
// them back: a client of the OCI distribution API (Docker's registry v2)
// with its tokens and Basic credentials, the choice of a platform's
// manifest, and every answer checked against the digest and size that
// name it. Chapter: docs/08-registry.md.
package registry

// A registry client, by hand, over net/http: the OCI distribution API
// (Docker's "registry v2") is a handful of HTTP calls, and seeing them is
// the point of this file.
//
//	GET  /v2/<repo>/manifests/<tag or digest>   a manifest or an index
//	GET  /v2/<repo>/blobs/<digest>              a config or a layer (often a redirect to storage)
//	HEAD /v2/<repo>/blobs/<digest>              is it there? (push)
//	POST /v2/<repo>/blobs/uploads/              start an upload: 202, Location
//	PUT  <Location>?digest=<digest>             the blob, in one piece: 201
//	PUT  /v2/<repo>/manifests/<tag>             the manifest last: 201
//
// A registry may answer 401 with WWW-Authenticate: Bearer realm=…,service=…,scope=…:
// the client asks the realm for a token (anonymous for public images on
// Docker Hub) and sends the request again with Authorization: Bearer.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/08-image/store"
)

// Limits on what a registry may send into memory.
const (
	maxManifest = 4 << 20 // as containerd and distribution bound a manifest
	maxErrBody  = 64 << 10
	maxToken    = 1 << 20 // a token answer: a JWT of a few KiB
)

// Media types a registry may return for a manifest.
const (
	mediaTypeDockerSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	mediaTypeDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// manifestAccept is what a pull accepts, as docker sends it: both image
// manifest formats and both kinds of multi-platform list.
var manifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageIndex,
	ocispec.MediaTypeImageManifest,
	store.MediaTypeDockerManifestList,
	store.MediaTypeDockerManifest,
}, ", ")

// Client speaks the distribution API to any registry. The zero value
// works: https everywhere except to loopback, no credentials.
type Client struct {
	HTTP *http.Client
	// Insecure lists registries reached over plain http, as docker's
	// insecure-registries: HOST, HOST:PORT or a CIDR. Loopback is always.
	Insecure []string
	// Username and Password, if set, answer a Basic challenge and go with
	// a token request (a private repository, a push to Docker Hub).
	Username, Password string
	UserAgent          string
}

// NewHTTPClient is an http.Client with time limits on everything but the
// body: a layer may take minutes, a silent server should not.
func NewHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = 60 * time.Second
	return &http.Client{Transport: t}
}

// Repo is one repository of one registry, with the token its calls earned.
type Repo struct {
	c     *Client
	Host  string // as in the name: docker.io, 127.0.0.1:5000
	Path  string // library/busybox
	base  string // https://registry-1.docker.io
	token string
	basic bool // the registry asked for Basic credentials
}

// Repository returns a client for host/path.
func (c *Client) Repository(host, path string) *Repo {
	h := Host(host)
	return &Repo{c: c, Host: host, Path: path, base: c.Scheme(h) + "://" + h}
}

// URL is the address of an API path under /v2/<repo>/.
func (r *Repo) URL(suffix string) string { return r.base + "/v2/" + r.Path + "/" + suffix }

func (c *Client) http() *http.Client {
	if c.HTTP == nil {
		c.HTTP = NewHTTPClient()
	}
	return c.HTTP
}

// request is one call; body, if any, is opened anew for a retry.
type request struct {
	method, url string
	header      http.Header
	body        func() (io.ReadCloser, error)
	size        int64
}

// do sends a request, and once more with a token (or Basic credentials)
// when the registry answers 401 with a challenge. A response of 400 and
// over becomes an error that carries the registry's own message.
func (r *Repo) do(ctx context.Context, q request) (*http.Response, error) {
	resp, err := r.send(ctx, q)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		ch, ok := ParseChallenge(resp.Header.Get("WWW-Authenticate"))
		if ok {
			resp.Body.Close()
			if err := r.authorize(ctx, ch); err != nil {
				return nil, err
			}
			if resp, err = r.send(ctx, q); err != nil {
				return nil, err
			}
		}
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	return resp, nil
}

func (r *Repo) send(ctx context.Context, q request) (*http.Response, error) {
	var body io.ReadCloser
	if q.body != nil {
		var err error
		if body, err = q.body(); err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, q.method, q.url, body)
	if err != nil {
		if body != nil {
			body.Close()
		}
		return nil, err
	}
	if body != nil {
		req.ContentLength = q.size
	}
	for k, v := range q.header {
		req.Header[k] = v
	}
	ua := r.c.UserAgent
	if ua == "" {
		ua = "berth/08-image"
	}
	req.Header.Set("User-Agent", ua)
	switch {
	case r.token != "":
		req.Header.Set("Authorization", "Bearer "+r.token)
	case r.basic:
		req.SetBasicAuth(r.c.Username, r.c.Password)
	}
	// Go follows redirects (a blob is often served from storage elsewhere)
	// and drops Authorization when one leads to another host.
	resp, err := r.c.http().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot reach the registry %s: %v", r.base, err)
	}
	return resp, nil
}

// Error is an answer of 400 or more, with the registry's errors
// ({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}).
type Error struct {
	Status int
	Errors []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
}

func (e *Error) Error() string {
	var parts []string
	for _, x := range e.Errors {
		code := strings.ToLower(strings.ReplaceAll(x.Code, "_", " "))
		switch {
		case x.Message == "" || strings.EqualFold(x.Message, code):
			parts = append(parts, code)
		case code == "":
			parts = append(parts, x.Message)
		default:
			parts = append(parts, code+": "+x.Message)
		}
	}
	if len(parts) == 0 {
		return fmt.Sprintf("%d %s", e.Status, strings.ToLower(http.StatusText(e.Status)))
	}
	return strings.Join(parts, "; ")
}

func readError(resp *http.Response) error {
	e := &Error{Status: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrBody))
	_ = json.Unmarshal(b, e)
	return e
}

// statusOf is the HTTP status of a registry's error, or 0.
func statusOf(err error) int {
	var re *Error
	if errors.As(err, &re) {
		return re.Status
	}
	return 0
}

// GetManifest fetches a manifest or an index by tag or digest and checks
// it against every digest that names it: the one asked for, and the
// Docker-Content-Digest the registry answers with. The descriptor's media
// type is the document's own (covered by the digest), or the header's.
func (r *Repo) GetManifest(ctx context.Context, ref string) (ocispec.Descriptor, []byte, error) {
	resp, err := r.do(ctx, request{method: http.MethodGet, url: r.URL("manifests/" + ref),
		header: http.Header{"Accept": {manifestAccept}}})
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: the registry answers %s", ref, resp.Status)
	}
	if resp.ContentLength > maxManifest {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s is %d bytes, over the limit of %d", ref, resp.ContentLength, maxManifest)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxManifest+1))
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("read manifest %s: %w", ref, err)
	}
	if len(b) > maxManifest {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s is over the limit of %d bytes", ref, maxManifest)
	}
	got := digest.FromBytes(b)
	for _, want := range []string{ref, resp.Header.Get("Docker-Content-Digest")} {
		d, err := digest.Parse(want)
		if err != nil {
			continue // a tag, or no header
		}
		if d.Algorithm().FromBytes(b) != d {
			return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: content does not match its digest %s (it hashes to %s): refused", ref, d, got)
		}
	}
	mt, err := manifestMediaType(b, resp.Header.Get("Content-Type"))
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: %w", ref, err)
	}
	return ocispec.Descriptor{MediaType: mt, Digest: got, Size: int64(len(b))}, b, nil
}

// manifestMediaType is the document's mediaType when it has one, else the
// Content-Type header, else what its fields say it is. Schema 1 (Docker's
// format before 2016) is named and refused.
func manifestMediaType(b []byte, contentType string) (string, error) {
	var probe struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     string          `json:"mediaType"`
		Manifests     json.RawMessage `json:"manifests"`
		Config        json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return "", fmt.Errorf("not JSON: %w", err)
	}
	mt := probe.MediaType
	if mt == "" {
		mt, _, _ = strings.Cut(contentType, ";")
		mt = strings.TrimSpace(mt)
	}
	if probe.SchemaVersion == 1 || mt == mediaTypeDockerSchema1 || mt == mediaTypeDockerSchema1Signed {
		return "", errors.New("schema 1 manifests (Docker's format before 2016) are not supported: push the image again with a current tool")
	}
	switch mt {
	case ocispec.MediaTypeImageIndex, store.MediaTypeDockerManifestList, ocispec.MediaTypeImageManifest, store.MediaTypeDockerManifest:
		return mt, nil
	case "", "application/json", "text/plain", "application/octet-stream":
		switch {
		case probe.Manifests != nil:
			return ocispec.MediaTypeImageIndex, nil
		case probe.Config != nil:
			return ocispec.MediaTypeImageManifest, nil
		}
	}
	return "", fmt.Errorf("media type %q is not an image manifest or index", mt)
}

// isIndex: a multi-platform list of manifests.
func isIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == store.MediaTypeDockerManifestList
}

// GetBlob opens a blob for reading. The caller checks what it reads
// against desc (PutBlob with the digest, and sizeReader).
func (r *Repo) GetBlob(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
	resp, err := r.do(ctx, request{method: http.MethodGet, url: r.URL("blobs/" + desc.Digest.String())})
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("blob %s: the registry answers %s", desc.Digest, resp.Status)
	}
	if resp.ContentLength >= 0 && resp.ContentLength != desc.Size {
		resp.Body.Close()
		return nil, fmt.Errorf("blob %s: the registry sends %d bytes, its descriptor says %d: refused", desc.Digest, resp.ContentLength, desc.Size)
	}
	return struct {
		io.Reader
		io.Closer
	}{&sizeReader{r: resp.Body, left: desc.Size, d: desc.Digest}, resp.Body}, nil
}

// sizeReader fails a blob that is longer or shorter than its descriptor.
type sizeReader struct {
	r    io.Reader
	left int64
	d    digest.Digest
}

func (s *sizeReader) Read(p []byte) (int, error) {
	if s.left <= 0 {
		var one [1]byte
		if n, _ := s.r.Read(one[:]); n > 0 {
			return 0, fmt.Errorf("blob %s is longer than its descriptor says", s.d)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, err := s.r.Read(p)
	s.left -= int64(n)
	if err == io.EOF && s.left > 0 {
		return n, fmt.Errorf("blob %s ends %d bytes short of its descriptor's size", s.d, s.left)
	}
	return n, err
}

// HasBlob asks with HEAD whether the repository has a blob.
func (r *Repo) HasBlob(ctx context.Context, d digest.Digest) (bool, error) {
	resp, err := r.do(ctx, request{method: http.MethodHead, url: r.URL("blobs/" + d.String())})
	if statusOf(err) == http.StatusNotFound {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("blob %s: %w", d, err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

// PushBlob uploads a blob in one piece: POST opens an upload and names
// where to send it (Location), PUT with ?digest= sends it and closes it.
// The registry checks the digest too.
func (r *Repo) PushBlob(ctx context.Context, desc ocispec.Descriptor, open func() (io.ReadCloser, error)) error {
	resp, err := r.do(ctx, request{method: http.MethodPost, url: r.URL("blobs/uploads/")})
	if err != nil {
		return fmt.Errorf("start upload of %s: %w", desc.Digest, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("start upload of %s: the registry answers %s", desc.Digest, resp.Status)
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		return fmt.Errorf("start upload of %s: no usable Location in the answer", desc.Digest)
	}
	q := loc.Query()
	q.Set("digest", desc.Digest.String())
	loc.RawQuery = q.Encode()
	resp, err = r.do(ctx, request{method: http.MethodPut, url: loc.String(), body: open, size: desc.Size,
		header: http.Header{"Content-Type": {"application/octet-stream"}}})
	if err != nil {
		return fmt.Errorf("upload %s: %w", desc.Digest, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("upload %s: the registry answers %s", desc.Digest, resp.Status)
	}
	return nil
}

// PutManifest stores a manifest under a tag (or its digest). The registry
// answers with the digest it computed, which must be ours.
func (r *Repo) PutManifest(ctx context.Context, ref, mediaType string, b []byte) (digest.Digest, error) {
	resp, err := r.do(ctx, request{method: http.MethodPut, url: r.URL("manifests/" + ref), size: int64(len(b)),
		body:   func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		header: http.Header{"Content-Type": {mediaType}}})
	if err != nil {
		return "", fmt.Errorf("put manifest %s: %w", ref, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("put manifest %s: the registry answers %s", ref, resp.Status)
	}
	d := digest.FromBytes(b)
	if h := resp.Header.Get("Docker-Content-Digest"); h != "" && h != d.String() {
		return "", fmt.Errorf("put manifest %s: the registry stored it as %s, not %s", ref, h, d)
	}
	return d, nil
}
