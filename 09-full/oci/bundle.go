//go:build linux

package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A bundle is a directory with config.json (the runtime spec) and the
// root filesystem it names. Everything in it is the caller's, and may be
// hostile: the config is read with a bound, through no symlink, and the
// root's /proc and /sys are checked through a handle on the root.

// maxConfig bounds config.json: runc spec's default is 3 KiB, a large
// Kubernetes pod's a few hundred.
const maxConfig = 4 << 20

// loadBundle reads bundle/config.json and checks what runc checks before it
// does anything: the spec's major version, and a root whose /proc and /sys
// are directories, not symlinks (the kernel would mount on the symlink's
// target, outside the root: CVE-2019-19921's kind). The root's path comes
// back absolute.
func loadBundle(bundle string) (*specs.Spec, string, error) {
	abs, err := filepath.Abs(bundle)
	if err != nil {
		return nil, "", fmt.Errorf("bundle %s: %w", bundle, err)
	}
	dir, err := unix.Open(abs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", fmt.Errorf("open bundle %s: %w", abs, err)
	}
	defer unix.Close(dir)
	fd, err := unix.Openat(dir, "config.json", unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", fmt.Errorf("open %s/config.json: %w", abs, err)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(abs, "config.json"))
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, "", fmt.Errorf("%s/config.json is not a regular file", abs)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxConfig+1))
	if err != nil {
		return nil, "", fmt.Errorf("read %s/config.json: %w", abs, err)
	}
	if len(b) > maxConfig {
		return nil, "", fmt.Errorf("%s/config.json is larger than %d bytes", abs, maxConfig)
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, "", fmt.Errorf("decode %s/config.json: %w", abs, err)
	}
	if err := checkVersion(spec.Version); err != nil {
		return nil, "", err
	}
	if spec.Root == nil || spec.Root.Path == "" {
		return nil, "", errors.New("config.json: root.path is empty")
	}
	if spec.Process == nil || spec.Linux == nil {
		return nil, "", errors.New("config.json: process and linux are required")
	}
	if !filepath.IsAbs(spec.Process.Cwd) {
		return nil, "", fmt.Errorf("config.json: process.cwd %q is not an absolute path", spec.Process.Cwd)
	}
	if !filepath.IsAbs(spec.Root.Path) {
		spec.Root.Path = filepath.Join(abs, spec.Root.Path)
	}
	if err := checkRoot(spec.Root.Path); err != nil {
		return nil, "", err
	}
	return &spec, abs, nil
}

// checkVersion accepts the spec's major version 1, as runc does.
func checkVersion(v string) error {
	major, _, _ := strings.Cut(v, ".")
	if major != "1" {
		return fmt.Errorf("config.json: unsupported ociVersion %q: berth-oci knows major version 1 (runtime-spec %s)", v, specs.Version)
	}
	return nil
}

// checkRoot refuses a root whose /proc or /sys is anything but a
// directory (or absent: a mount makes it): runc's "must be mounted on
// ordinary directory".
func checkRoot(root string) error {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the root %s: %w", root, err)
	}
	defer unix.Close(fd)
	for _, name := range []string{"proc", "sys"} {
		var st unix.Stat_t
		err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return fmt.Errorf("stat %s/%s: %w", root, name, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fmt.Errorf("%s/%s must be mounted on ordinary directory", root, name)
		}
	}
	return nil
}

// noCapabilities gives a process without a capabilities object none at
// all: every set empty, the bounding set too, as runc does (its
// libcontainer starts from an empty set when the config names none). The
// security step drops only what a spec tells it to (Finalize leaves a
// nil set alone, for berth's own specs, which always name theirs), so a
// bundle without the object ran its init with every capability of the
// root that ran berth-oci. The stored spec carries the empty sets, so an
// exec without capabilities gets them too (exec.go:confine).
func noCapabilities(spec *specs.Spec) {
	if spec.Process.Capabilities == nil {
		spec.Process.Capabilities = &specs.LinuxCapabilities{}
	}
}
