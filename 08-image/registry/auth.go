//go:build linux

package registry

// How a client reaches a registry and is let in: the scheme (https, or
// http for loopback and insecure registries, as docker decides), and the
// answer to a 401: a Bearer token from the realm the registry names, or
// Basic credentials.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"berth/08-image/store"
)

// Host is where a name's registry answers: Docker Hub's names
// (docker.io/…) are served by registry-1.docker.io, as docker does.
func Host(domain string) string {
	if domain == "docker.io" || domain == "index.docker.io" {
		return "registry-1.docker.io"
	}
	return domain
}

// Scheme is http for a loopback registry or one listed as insecure, and
// https for every other.
func (c *Client) Scheme(host string) string {
	if isLoopbackHost(host) || matchInsecure(host, c.Insecure) {
		return "http"
	}
	return "https"
}

func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return strings.Trim(host, "[]")
}

func isLoopbackHost(host string) bool {
	h := hostOnly(host)
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// matchInsecure: an entry with a port names that registry; one without a
// port names the host on any port; a CIDR names every address in it.
func matchInsecure(host string, entries []string) bool {
	h := hostOnly(host)
	ip := net.ParseIP(h)
	for _, e := range entries {
		e = strings.TrimSpace(e)
		switch {
		case e == "":
		case e == host, e == h:
			return true
		case strings.Contains(e, "/"):
			if _, n, err := net.ParseCIDR(e); err == nil && ip != nil && n.Contains(ip) {
				return true
			}
		}
	}
	return false
}

// Challenge is a parsed WWW-Authenticate header.
type Challenge struct {
	Scheme string            // "bearer" or "basic"
	Params map[string]string // realm, service, scope…
}

// ParseChallenge reads the first challenge of a WWW-Authenticate value:
// a scheme, then key="value" pairs separated by commas (a quoted value
// may hold commas: scope="repository:a/b:pull,push").
func ParseChallenge(h string) (Challenge, bool) {
	h = strings.TrimSpace(h)
	scheme, rest, _ := strings.Cut(h, " ")
	if scheme == "" {
		return Challenge{}, false
	}
	ch := Challenge{Scheme: strings.ToLower(scheme), Params: map[string]string{}}
	for rest = strings.TrimSpace(rest); rest != ""; {
		k, v, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.TrimLeft(v, " ")
		if strings.HasPrefix(v, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' && i+1 < len(v) {
					i++
				}
				b.WriteByte(v[i])
			}
			ch.Params[k] = b.String()
			rest = v[min(i+1, len(v)):]
		} else {
			val, after, _ := strings.Cut(v, ",")
			ch.Params[k] = strings.TrimSpace(val)
			rest = "," + after
		}
		rest = strings.TrimLeft(rest, ", ")
	}
	return ch, ch.Scheme == "bearer" || ch.Scheme == "basic"
}

// authorize answers a challenge: Basic with the client's credentials, or
// a Bearer token from the realm for the scope the registry named.
func (r *Repo) authorize(ctx context.Context, ch Challenge) error {
	if ch.Scheme == "basic" {
		if r.c.Username == "" || r.basic {
			return fmt.Errorf("registry %s wants a user name and password (--creds USER:PASSWORD)", r.Host)
		}
		r.basic = true
		return nil
	}
	realm := ch.Params["realm"]
	u, err := url.Parse(realm)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("registry %s: token realm %q is not an http(s) URL", r.Host, realm)
	}
	q := u.Query()
	if s := ch.Params["service"]; s != "" {
		q.Set("service", s)
	}
	scope := ch.Params["scope"]
	if scope == "" && r.Path != "" { // no path: a login, which asks for no scope
		scope = "repository:" + r.Path + ":pull"
	}
	if r.Path == "" && r.c.Username != "" {
		q.Set("account", r.c.Username) // as docker login asks
	}
	for _, s := range strings.Fields(scope) {
		q.Add("scope", s)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	if r.c.Username != "" {
		// A password goes in clear over http: only to an https realm, or
		// when the registry itself was chosen to speak plain http.
		if u.Scheme != "https" && r.c.Scheme(r.Host) != "http" {
			return fmt.Errorf("registry %s: its token realm %s is plain http: refusing to send the password there", r.Host, u.Host)
		}
		req.SetBasicAuth(r.c.Username, r.c.Password)
	}
	resp, err := r.c.http().Do(req)
	if err != nil {
		return fmt.Errorf("token for %s from %s: %v", r.Host, u.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("token for %s from %s: %s", r.Host, u.Host, readError(resp))
	}
	var tok struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	// A token is a JWT of a few KiB, and it goes into every request's
	// headers after this: an answer of more is refused, whole.
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxToken+1))
	if err != nil {
		return fmt.Errorf("token for %s from %s: %w", r.Host, u.Host, err)
	}
	if len(b) > maxToken {
		return fmt.Errorf("token for %s from %s: the answer is over %s: refused", r.Host, u.Host, store.FormatSize(maxToken))
	}
	if err := json.Unmarshal(b, &tok); err != nil {
		return fmt.Errorf("token for %s from %s: %w", r.Host, u.Host, err)
	}
	if tok.Token == "" {
		tok.Token = tok.AccessToken
	}
	if tok.Token == "" {
		return fmt.Errorf("token for %s from %s: the answer holds no token", r.Host, u.Host)
	}
	r.token = tok.Token
	return nil
}

// Login checks the client's credentials against a registry as docker
// login does: GET /v2/, and answer its challenge (Basic, or a Bearer
// token from its realm, without a scope). A registry that asks for none
// lets anyone in: that is a success too.
func (c *Client) Login(ctx context.Context, host string) error {
	r := c.Repository(host, "")
	resp, err := r.do(ctx, request{method: http.MethodGet, url: r.base + "/v2/"})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}
