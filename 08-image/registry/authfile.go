//go:build linux

package registry

// The credentials docker login keeps: config.json in $DOCKER_CONFIG, or
// in ~/.docker, whose "auths" map a registry to base64("user:password").
// berth reads and writes the same file, so a login made with either tool
// serves both. The file holds passwords in the clear (docker's does too,
// without a credential helper): it is written 0600, in a directory
// created 0700, by a rename, so that no reader sees half of it.

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DockerHubAuthKey is the key docker keeps Docker Hub's login under.
const DockerHubAuthKey = "https://index.docker.io/v1/"

// maxAuthFile bounds what is read of config.json: it holds a few logins.
const maxAuthFile = 1 << 20

// AuthFile is a Docker config.json: its logins, and every other field as
// it was, so that writing it back keeps what berth does not know.
type AuthFile struct {
	Path   string
	fields map[string]json.RawMessage
	auths  map[string]map[string]json.RawMessage
}

// AuthFilePath is where docker keeps config.json: $DOCKER_CONFIG, else
// ~/.docker.
func AuthFilePath() (string, error) {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("where to keep logins: %w (set $DOCKER_CONFIG)", err)
	}
	return filepath.Join(home, ".docker", "config.json"), nil
}

// AuthKey is the key of a registry in config.json: its host (with the
// port), or docker's key for Docker Hub.
func AuthKey(host string) string {
	switch host {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io", DockerHubAuthKey:
		return DockerHubAuthKey
	}
	return host
}

// LoadAuthFile reads config.json; a file that does not exist is empty.
func LoadAuthFile(path string) (*AuthFile, error) {
	f := &AuthFile{Path: path, fields: map[string]json.RawMessage{}, auths: map[string]map[string]json.RawMessage{}}
	file, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, err
	}
	defer file.Close()
	b, err := io.ReadAll(io.LimitReader(file, maxAuthFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxAuthFile {
		return nil, fmt.Errorf("%s is over 1 MiB: not a docker config.json", path)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return f, nil
	}
	if err := json.Unmarshal(b, &f.fields); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if raw, ok := f.fields["auths"]; ok {
		if err := json.Unmarshal(raw, &f.auths); err != nil {
			return nil, fmt.Errorf("%s: auths: %w", path, err)
		}
	}
	return f, nil
}

// Get is the login stored for a registry host.
func (f *AuthFile) Get(host string) (user, password string, ok bool, err error) {
	entry, found := f.auths[AuthKey(host)]
	if !found {
		return "", "", false, nil
	}
	var enc string
	if raw, has := entry["auth"]; has {
		if err := json.Unmarshal(raw, &enc); err != nil {
			return "", "", false, fmt.Errorf("%s: the login of %s: %w", f.Path, host, err)
		}
	}
	if enc == "" {
		return "", "", false, nil // an identity token or a helper's: not berth's
	}
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "", "", false, fmt.Errorf("%s: the login of %s is not base64: %w", f.Path, host, err)
	}
	user, password, ok = strings.Cut(string(b), ":")
	if !ok || user == "" {
		return "", "", false, fmt.Errorf("%s: the login of %s is not user:password", f.Path, host)
	}
	return user, password, true, nil
}

// Set stores a login (replacing the registry's entry).
func (f *AuthFile) Set(host, user, password string) {
	enc, _ := json.Marshal(base64.StdEncoding.EncodeToString([]byte(user + ":" + password)))
	f.auths[AuthKey(host)] = map[string]json.RawMessage{"auth": enc}
}

// Remove forgets a registry's login; false if there was none.
func (f *AuthFile) Remove(host string) bool {
	k := AuthKey(host)
	_, ok := f.auths[k]
	delete(f.auths, k)
	return ok
}

// Save writes the file back: 0600, through a temporary file renamed
// over it, its directory made 0700 if missing.
func (f *AuthFile) Save() error {
	auths, err := json.Marshal(f.auths)
	if err != nil {
		return err
	}
	f.fields["auths"] = auths
	b, err := json.MarshalIndent(f.fields, "", "\t")
	if err != nil {
		return err
	}
	dir := filepath.Dir(f.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("make %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".config.json.*")
	if err != nil {
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	defer os.Remove(tmp.Name()) // after the rename: nothing
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	if err := os.Rename(tmp.Name(), f.Path); err != nil {
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	return nil
}
