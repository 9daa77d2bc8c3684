//go:build linux

package registry

// Credential helpers, as docker uses them: config.json's "credsStore"
// names one helper for every registry, "credHelpers" one per registry,
// and the helper, docker-credential-NAME on PATH, keeps the passwords
// (in a keyring, pass, a secret service…) instead of config.json. Its
// protocol: the verb as the one argument (get, store, erase, list), the
// input on stdin (the server's address; for store, a JSON object), the
// answer on stdout (for get, a JSON object), a failure as an exit status
// other than 0 with its reason on stdout.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// maxHelperOutput bounds what is read of a helper's answer: a user name
// and a secret.
const maxHelperOutput = 64 << 10

// errCredentialsNotFound is the answer of a helper that has nothing for
// the server (docker-credential-helpers' credentials.ErrCredentialsNotFound).
const errCredentialsNotFound = "credentials not found in native keychain"

// helperCreds is the JSON of get's answer and store's input.
type helperCreds struct {
	ServerURL string
	Username  string
	Secret    string
}

// Helper is the credential helper config.json names for a registry host
// ("": none): credHelpers' entry for it, else credsStore.
func (f *AuthFile) Helper(host string) (string, error) {
	var name string
	if raw, ok := f.fields["credHelpers"]; ok {
		var per map[string]string
		if err := json.Unmarshal(raw, &per); err != nil {
			return "", fmt.Errorf("%s: credHelpers: %w", f.Path, err)
		}
		name = per[AuthKey(host)]
		if name == "" {
			name = per[host]
		}
	}
	if raw, ok := f.fields["credsStore"]; ok && name == "" {
		if err := json.Unmarshal(raw, &name); err != nil {
			return "", fmt.Errorf("%s: credsStore: %w", f.Path, err)
		}
	}
	if name != "" && !validHelperName(name) {
		return "", fmt.Errorf("%s: credential helper %q: not a helper's name (letters, digits, '.', '_', '-')", f.Path, name)
	}
	return name, nil
}

// validHelperName: a name that makes docker-credential-NAME a file name
// found on PATH, not a path.
func validHelperName(name string) bool {
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return name != "" && len(name) <= 64
}

// runHelper runs docker-credential-NAME VERB with input on stdin and
// returns its stdout, bounded; a failure is one line: the helper's own
// reason (its first line of output) or how it ended.
func runHelper(name, verb string, input []byte) ([]byte, error) {
	prog := "docker-credential-" + name
	path, err := exec.LookPath(prog)
	if err != nil {
		return nil, fmt.Errorf("credential helper %s: not found on PATH", prog)
	}
	cmd := exec.Command(path, verb)
	cmd.Stdin = bytes.NewReader(input)
	var out, errOut boundedBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	if out.over || errOut.over {
		return nil, fmt.Errorf("credential helper %s %s: its answer is over %d bytes: refused", prog, verb, maxHelperOutput)
	}
	if err != nil {
		reason := firstLine(out.buf.String())
		if reason == "" {
			reason = firstLine(errOut.buf.String())
		}
		if reason == errCredentialsNotFound {
			return nil, errNotFoundInHelper
		}
		if reason == "" {
			reason = err.Error()
		}
		return nil, fmt.Errorf("credential helper %s %s: %s", prog, verb, reason)
	}
	return out.buf.Bytes(), nil
}

var errNotFoundInHelper = errors.New(errCredentialsNotFound)

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if l, _, ok := strings.Cut(s, "\n"); ok {
		s = strings.TrimSpace(l)
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// boundedBuffer keeps the first maxHelperOutput bytes written to it and
// notes that more came (the rest is read and dropped, so the helper does
// not block on a full pipe). The buffer is a field, not embedded: an
// embedded bytes.Buffer's ReadFrom would let io.Copy past Write's bound.
type boundedBuffer struct {
	buf  bytes.Buffer
	over bool
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := maxHelperOutput - b.buf.Len(); len(p) > room {
		b.over = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

// helperGet asks the helper for a registry's login: ok false when it has
// none.
func helperGet(name, host string) (user, password string, ok bool, err error) {
	key := AuthKey(host)
	out, err := runHelper(name, "get", []byte(key+"\n"))
	if errors.Is(err, errNotFoundInHelper) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, err
	}
	var c helperCreds
	if err := json.Unmarshal(out, &c); err != nil {
		return "", "", false, fmt.Errorf("credential helper docker-credential-%s get: its answer is not JSON: %w", name, err)
	}
	if c.Username == "<token>" {
		return "", "", false, fmt.Errorf("credential helper docker-credential-%s: the login of %s is an identity token, which berth does not use", name, host)
	}
	if c.Username == "" && c.Secret == "" {
		return "", "", false, nil
	}
	return c.Username, c.Secret, true, nil
}

// Lookup is the login for a registry host: through its credential helper
// when config.json names one, else from "auths".
func (f *AuthFile) Lookup(host string) (user, password string, ok bool, err error) {
	helper, err := f.Helper(host)
	if err != nil {
		return "", "", false, err
	}
	if helper != "" {
		return helperGet(helper, host)
	}
	return f.Get(host)
}

// Store keeps a login: with the registry's credential helper when
// config.json names one (config.json then keeps an empty entry for the
// registry, as docker's does), else in "auths". It says whether the
// password went to a helper; the caller then Saves the file.
func (f *AuthFile) Store(host, user, password string) (helper string, err error) {
	if helper, err = f.Helper(host); err != nil {
		return "", err
	}
	if helper == "" {
		f.Set(host, user, password)
		return "", nil
	}
	in, err := json.Marshal(helperCreds{ServerURL: AuthKey(host), Username: user, Secret: password})
	if err != nil {
		return "", err
	}
	if _, err := runHelper(helper, "store", in); err != nil {
		return "", err
	}
	f.auths[AuthKey(host)] = map[string]json.RawMessage{}
	return helper, nil
}

// Erase forgets a registry's login: in its credential helper too when
// config.json names one. False if there was none in either.
func (f *AuthFile) Erase(host string) (bool, error) {
	helper, err := f.Helper(host)
	if err != nil {
		return false, err
	}
	had := f.Remove(host)
	if helper == "" {
		return had, nil
	}
	_, err = runHelper(helper, "erase", []byte(AuthKey(host)+"\n"))
	if errors.Is(err, errNotFoundInHelper) {
		return had, nil
	}
	if err != nil {
		return had, err
	}
	return true, nil
}
