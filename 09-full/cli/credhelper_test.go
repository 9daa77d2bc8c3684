//go:build linux

package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// helperScript is a credential helper of docker's protocol: store keeps
// stdin's JSON in a file named after its ServerURL, get prints it, erase
// removes it; each call is noted in DIR/calls.
const helperScript = `#!/bin/sh
d=DIR
echo "$1" >>"$d/calls"
key() { printf '%s' "$1" | tr -c 'a-zA-Z0-9' _; }
case "$1" in
store) in=$(cat); url=$(printf '%s' "$in" | sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p'); printf '%s' "$in" >"$d/$(key "$url")" ;;
get) read -r url; f="$d/$(key "$url")"; [ -f "$f" ] && cat "$f" || { echo "credentials not found in native keychain"; exit 1; } ;;
erase) read -r url; f="$d/$(key "$url")"; [ -f "$f" ] && rm "$f" || { echo "credentials not found in native keychain"; exit 1; } ;;
*) echo "unknown verb $1"; exit 1 ;;
esac
`

// login, pull, push, build and logout go through the credential helper
// config.json names (credsStore, or credHelpers for one registry):
// docker-credential-NAME on PATH, docker's protocol. The password never
// reaches config.json. A helper's failure is one line; an answer past
// the bound is refused; a helper name that is a path is refused.
func TestCredentialHelpers(t *testing.T) {
	h := newHost(t)
	reg := startAuthRegistry(t)
	bin, store := t.TempDir(), t.TempDir()
	writeHelper := func(name, body string) {
		require.NoError(t, os.WriteFile(filepath.Join(bin, "docker-credential-"+name), []byte(body), 0o755))
	}
	writeHelper("berthtest", strings.Replace(helperScript, "DIR", store, 1))
	writeHelper("broken", "#!/bin/sh\necho 'the keyring is locked'\necho 'second line'\nexit 1\n")
	writeHelper("flood", "#!/bin/sh\nhead -c 1000000 /dev/zero | tr '\\0' x\n")
	cfgDir := filepath.Join(t.TempDir(), "docker")
	require.NoError(t, os.Mkdir(cfgDir, 0o700))
	cfgFile := filepath.Join(cfgDir, "config.json")
	h.env = append(h.env, "DOCKER_CONFIG="+cfgDir, "PATH="+bin+":"+os.Getenv("PATH"))
	config := func(s string) { require.NoError(t, os.WriteFile(cfgFile, []byte(s), 0o600)) }
	calls := func() string {
		b, _ := os.ReadFile(filepath.Join(store, "calls"))
		return strings.Join(strings.Fields(string(b)), " ")
	}

	config(`{"credsStore": "berthtest"}`)
	ref := reg + "/helped/app"
	h.ok("import", "--cmd", "sh", h.rootf, "base")
	h.ok("tag", "base", ref)
	r := h.runIn("secret\n", "login", "-u", "me", "--password-stdin", reg)
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "Login Succeeded\n", r.Stdout)
	assert.NotContains(t, r.Stderr, "unencrypted", "the helper keeps the password")
	b, err := os.ReadFile(cfgFile)
	require.NoError(t, err)
	assert.NotContains(t, string(b), `"auth"`, "a password in config.json: %s", b)
	assert.Contains(t, string(b), `"`+reg+`": {}`, "docker's empty entry for a helper's login")
	assert.Equal(t, "store", calls())
	kept, err := os.ReadFile(filepath.Join(store, strings.NewReplacer(".", "_", ":", "_").Replace(reg)))
	require.NoError(t, err)
	assert.JSONEq(t, `{"ServerURL":"`+reg+`","Username":"me","Secret":"secret"}`, string(kept))

	// push, pull and build read the login through the helper.
	h.ok("push", ref)
	h.ok("rmi", ref, "base")
	h.ok("pull", ref)
	h.ok("rmi", ref)
	ctx := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM "+ref+"\nCMD [\"echo\", \"helped\"]\n"), 0o644))
	assert.Contains(t, h.ok("build", "-t", "app", ctx), "Status: Downloaded newer image for "+ref+":latest")
	assert.Equal(t, "store get get get", calls())

	// credHelpers names the helper of one registry, over credsStore.
	h.ok("rmi", ref)
	config(`{"credsStore": "nonexistent", "credHelpers": {"` + reg + `": "berthtest"}}`)
	h.ok("pull", ref)

	// logout erases it in the helper; then pull has no login.
	assert.Equal(t, "Removing login credentials for "+reg, h.ok("logout", reg))
	assert.Contains(t, calls(), "erase")
	_, err = os.Stat(filepath.Join(store, strings.NewReplacer(".", "_", ":", "_").Replace(reg)))
	assert.True(t, os.IsNotExist(err), "logout left the helper's entry")
	h.ok("rmi", ref)
	r = h.run("pull", ref)
	assert.NotEqual(t, 0, r.Code, r.String())

	// A helper that fails says why, in one line; one that floods is cut
	// off; a helper's name that is a path is refused, nothing run.
	config(`{"credsStore": "broken"}`)
	r = h.run("pull", ref)
	assert.Equal(t, 1, strings.Count(strings.TrimSpace(r.Stderr), "\n")+1, r.Stderr)
	assert.Contains(t, r.Stderr, "credential helper docker-credential-broken get: the keyring is locked")
	config(`{"credsStore": "flood"}`)
	r = h.run("pull", ref)
	assert.Contains(t, r.Stderr, "credential helper docker-credential-flood get: its answer is over 65536 bytes: refused")
	config(`{"credsStore": "../../bin/sh"}`)
	r = h.run("pull", ref)
	assert.Contains(t, r.Stderr, `credential helper "../../bin/sh": not a helper's name`)
}
