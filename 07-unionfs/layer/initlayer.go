//go:build linux

package layer

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// The init layer sits between the image's layers and the container's own
// layer (Docker's "<id>-init"). It holds what the runtime writes for every
// run: /etc/hostname, /etc/hosts, /etc/resolv.conf, and the empty mount
// points of the volumes. Being a read-only layer of its own, none of it is
// a change of the container: diff and commit never see it.

// writeInit fills the init layer dir, on top of the layers below (top
// first).
func writeInit(dir string, below []string, hostname string, volumes []Volume) error {
	stack := newStack(below)
	etc, err := mkdirLike(dir, stack, "/etc")
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"hostname":    []byte(hostname + "\n"),
		"hosts":       hostsFile(hostname),
		"resolv.conf": resolvConf("/etc/resolv.conf"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(etc, name), data, 0o644); err != nil {
			return err
		}
	}
	for _, v := range volumes {
		if err := mountpoint(dir, stack, v); err != nil {
			return fmt.Errorf("mount point for volume %s: %w", v.Dest, err)
		}
	}
	return nil
}

func hostsFile(hostname string) []byte {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	if hostname != "" {
		fmt.Fprintf(&b, "127.0.1.1\t%s\n", hostname)
	}
	return b.Bytes()
}

// resolvConf copies the host's resolver configuration without loopback
// name servers: 127.0.0.53 is the host's, not reachable from a container
// with its own network namespace (Docker filters them the same way).
func resolvConf(hostFile string) []byte {
	var b bytes.Buffer
	b.WriteString("# written by berth from the host's " + hostFile + "\n")
	data, err := os.ReadFile(hostFile)
	if err != nil {
		return b.Bytes()
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil && a.IsLoopback() {
				continue
			}
		}
		if len(f) > 0 && !strings.HasPrefix(f[0], "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.Bytes()
}

// mountpoint makes sure the volume's destination exists in the union: if
// no layer has it, it is created in the init layer. The destination is
// resolved as the container will see it: symlinks in the layers are
// followed, but never out of the root (securejoin over the stack, below).
func mountpoint(dir string, stack stackDir, v Volume) error {
	resolved, err := securejoin.SecureJoinVFS("/", v.Dest, stackVFS{stack})
	if err != nil {
		return err
	}
	if e, ok, err := stack.lookup(resolved); err != nil {
		return err
	} else if ok && e.isDir() != v.isFile() {
		return nil // the image has it, of the right kind
	}
	parent, err := mkdirLike(dir, stack, filepath.Dir(resolved))
	if err != nil {
		return err
	}
	p := filepath.Join(parent, filepath.Base(resolved))
	if v.isFile() {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		return f.Close()
	}
	return os.MkdirAll(p, 0o755)
}

// mkdirLike creates rel (resolved, inside the init layer dir) and its
// parents, giving each the owner, mode and times the same directory has in
// the layers below: an init-layer directory shadows the lower one's
// metadata, and /tmp must stay 1777.
func mkdirLike(dir string, stack stackDir, rel string) (string, error) {
	cur := dir
	sub := "/"
	for _, name := range splitPath(rel) {
		cur = filepath.Join(cur, name)
		sub = filepath.Join(sub, name)
		if _, err := os.Lstat(cur); err == nil {
			continue
		}
		if err := os.Mkdir(cur, 0o755); err != nil {
			return "", err
		}
		if e, ok, err := stack.lookup(sub); err != nil {
			return "", err
		} else if ok && e.isDir() {
			if err := setMeta(e.path, cur, &e.st); err != nil {
				return "", err
			}
		}
	}
	return cur, nil
}

// stackVFS lets securejoin resolve a path through the union of layers as
// the container will see it.
type stackVFS struct{ stack stackDir }

func (v stackVFS) Lstat(name string) (os.FileInfo, error) {
	e, ok, err := v.stack.lookup(name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: unix.ENOENT}
	}
	return os.Lstat(e.path)
}

func (v stackVFS) Readlink(name string) (string, error) {
	e, ok, err := v.stack.lookup(name)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: unix.ENOENT}
	}
	return os.Readlink(e.path)
}
