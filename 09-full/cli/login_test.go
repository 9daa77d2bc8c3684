//go:build linux

package cli_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

const registryBin = "/usr/bin/docker-registry"

// startAuthRegistry runs Debian's docker-registry on a free port of
// 127.0.0.1, asking for user me, password secret (htpasswd, bcrypt), and
// stops it (by its PID) at the end.
func startAuthRegistry(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(registryBin); err != nil {
		t.Skipf("skipped: %s is missing (Debian's docker-registry; sudo make setup installs it)", registryBin)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	host := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "htpasswd"), []byte("me:"+string(hash)+"\n"), 0o600))
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n"+
		"auth:\n  htpasswd:\n    realm: berth-test\n    path: %s\n", filepath.Join(dir, "storage"), host, filepath.Join(dir, "htpasswd"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644))
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	require.NoError(t, err)
	defer logf.Close()
	cmd := exec.Command(registryBin, "serve", filepath.Join(dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("docker-registry exited at start:\n%s", b)
		default:
		}
		if resp, err := http.Get("http://" + host + "/v2/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return host
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("docker-registry does not answer on %s after 20s:\n%s", host, b)
		}
	}
}

// login and logout keep a registry's login in Docker's config.json
// ($DOCKER_CONFIG here), 0600, the password never on a command line;
// push and pull use it; a wrong password stores nothing; logout forgets
// it; what else the file holds is kept.
func TestLoginLogout(t *testing.T) {
	h := newHost(t)
	reg := startAuthRegistry(t)
	cfgDir := filepath.Join(t.TempDir(), "docker")
	h.env = append(h.env, "DOCKER_CONFIG="+cfgDir)
	cfgFile := filepath.Join(cfgDir, "config.json")
	require.NoError(t, os.Mkdir(cfgDir, 0o700))
	require.NoError(t, os.WriteFile(cfgFile, []byte(`{"psFormat": "table {{.Names}}", "auths": {"other.example": {"auth": "eDp5"}}}`), 0o644))

	ref := reg + "/test/app:1"
	h.ok("import", "--change", `ENTRYPOINT ["echo"]`, h.rootf, "base")
	h.ok("tag", "base", ref)
	r := h.run("push", ref)
	require.NotEqual(t, 0, r.Code, "push without a login: %s", r)
	assert.Contains(t, r.Stderr, "wants a user name and password")

	r = h.runIn("wrong\n", "login", "-u", "me", "--password-stdin", reg)
	require.NotEqual(t, 0, r.Code, "a wrong password: %s", r)
	assert.NotContains(t, r.Stdout, "Login Succeeded")
	b, err := os.ReadFile(cfgFile)
	require.NoError(t, err)
	assert.NotContains(t, string(b), reg, "a failed login was stored")

	r = h.runIn("secret\n", "login", "-u", "me", "--password-stdin", reg)
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "Login Succeeded\n", r.Stdout)
	assert.NotContains(t, r.Stderr, "Using --password via the CLI is insecure")
	st, err := os.Stat(cfgFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	var cfg struct {
		PsFormat string `json:"psFormat"`
		Auths    map[string]struct {
			Auth string `json:"auth"`
		} `json:"auths"`
	}
	b, err = os.ReadFile(cfgFile)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &cfg))
	assert.Equal(t, base64.StdEncoding.EncodeToString([]byte("me:secret")), cfg.Auths[reg].Auth)
	assert.Equal(t, "eDp5", cfg.Auths["other.example"].Auth, "another registry's login kept")
	assert.Equal(t, "table {{.Names}}", cfg.PsFormat, "a field berth does not know kept")

	// push and pull with the stored login, and a container of the pulled
	// image.
	h.ok("push", ref)
	h.ok("rmi", ref)
	h.ok("pull", ref)
	assert.Equal(t, "pulled", h.ok("run", "--rm", "--network", "none", ref, "pulled"))

	assert.Equal(t, "Removing login credentials for "+reg, h.ok("logout", reg))
	assert.Equal(t, "Not logged in to "+reg, h.ok("logout", reg))
	b, err = os.ReadFile(cfgFile)
	require.NoError(t, err)
	assert.NotContains(t, string(b), reg)
	h.ok("rmi", ref)
	r = h.run("pull", ref)
	require.NotEqual(t, 0, r.Code, "pull after logout: %s", r)

	// -p works, and says why it should not be used.
	r = h.run("login", "-u", "me", "-p", "secret", reg)
	require.Equal(t, 0, r.Code, r.String())
	assert.Contains(t, r.Stderr, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
	// Without a terminal and without --password-stdin: one line, 125.
	r = h.runIn("", "login", "-u", "me", reg)
	assert.Equal(t, 125, r.Code, r.String())
	assert.Contains(t, r.Stderr, "--password-stdin")
}
