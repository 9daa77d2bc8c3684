package main

// The guest runs the host's own userland for what the tests call: a
// test that runs `readlink A B` or `sh -c` must meet GNU coreutils and
// dash in the VM as it does on the host, or the VM run would report
// busybox's differences instead of the kernel's. So the commands of a
// few Debian packages are copied from the host with their shared
// libraries, at the host's paths (merged /usr included); busybox-static
// fills in every other command, and /init uses busybox alone.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// hostPackages are the Debian packages whose commands the guest takes
// from the host, when installed there.
var hostPackages = []string{
	"coreutils", "util-linux", "mount", "procps", "psmisc", "iproute2", "nftables",
	"dash", "bash", "grep", "sed", "mawk", "findutils", "diffutils", "tar", "gzip",
	"hostname", "passwd", "uidmap", "slirp4netns", "e2fsprogs", "curl", "libcap2-bin", "iputils-ping", "attr", "netcat-openbsd",
	"docker-registry", "skopeo", "umoci", // 08-image's registry and reference tools
	"tini", // tini-static: 09-full/security's --init (docker-init)
}

// hostConfig are configuration files the commands above refuse to run
// without (skopeo reads its trust policy), copied when the host has them.
var hostConfig = []string{"/etc/containers/policy.json", "/etc/containers/registries.conf"}

// notFromHost stay busybox's: they need PAM, a login setup or a real init.
var notFromHost = map[string]bool{
	"su": true, "runuser": true, "login": true, "sulogin": true, "agetty": true, "getty": true,
	"switch_root": true,
}

// A userland is the host's files for the guest, by guest path.
type userland struct {
	Files map[string]string // guest path -> host file (copied)
	Links map[string]string // guest path -> link target
	Names map[string]bool   // command names it provides
}

// mergedUsr reports whether the host's /bin is a link to /usr/bin.
func mergedUsr() bool {
	fi, err := os.Lstat("/bin")
	return err == nil && fi.Mode()&os.ModeSymlink != 0
}

// guestPath maps a host path to the archive: no leading slash, and on a
// merged-/usr host, /bin /sbin /lib /lib64 spelled under usr/.
func guestPath(p string, merged bool) string {
	p = strings.TrimPrefix(filepath.Clean(p), "/")
	if merged {
		for _, d := range []string{"bin", "sbin", "lib", "lib64"} {
			if p == d || strings.HasPrefix(p, d+"/") {
				return "usr/" + p
			}
		}
	}
	return p
}

func isBinDir(p string) bool {
	d := filepath.Dir(p)
	return d == "/bin" || d == "/sbin" || d == "/usr/bin" || d == "/usr/sbin"
}

// hostUserland collects the commands of hostPackages, their libraries,
// and the host's names for busybox applets that resolve to one of them
// (awk -> mawk through /etc/alternatives).
func hostUserland(applets []string, merged bool) (*userland, error) {
	u := &userland{Files: map[string]string{}, Links: map[string]string{}, Names: map[string]bool{}}
	byHost := map[string]bool{} // host files taken, by their real path
	for _, pkg := range hostPackages {
		st, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", pkg).Output()
		if !strings.HasSuffix(string(st), " installed") {
			continue
		}
		out, err := exec.Command("dpkg", "-L", pkg).Output()
		if err != nil {
			return nil, fmt.Errorf("dpkg -L %s: %w", pkg, err)
		}
		for _, p := range strings.Split(string(out), "\n") {
			if !isBinDir(p) || notFromHost[filepath.Base(p)] {
				continue
			}
			fi, err := os.Lstat(p)
			if err != nil {
				continue // diverted or removed
			}
			switch {
			case fi.Mode()&os.ModeSymlink != 0:
				t, err := os.Readlink(p)
				if err != nil {
					return nil, err
				}
				u.Links[guestPath(p, merged)] = t
			case fi.Mode().IsRegular() && fi.Mode()&0o111 != 0:
				u.Files[guestPath(p, merged)] = p
				if r, err := filepath.EvalSymlinks(p); err == nil {
					byHost[r] = true
				}
			default:
				continue
			}
			u.Names[filepath.Base(p)] = true
		}
	}
	for _, name := range applets {
		if u.Names[name] || notFromHost[name] {
			continue
		}
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		if r, err := filepath.EvalSymlinks(p); err == nil && byHost[r] {
			u.Links[guestPath(p, merged)] = r
			u.Names[name] = true
		}
	}
	for _, p := range hostConfig {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			u.Files[guestPath(p, merged)] = p
		}
	}
	// Shared libraries, as ldd resolves them on the host.
	libs := map[string]bool{}
	for _, host := range u.Files {
		out, err := exec.Command("ldd", host).Output()
		if err != nil {
			continue // static: "not a dynamic executable"
		}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
				libs[f[2]] = true
			case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
				libs[f[0]] = true // the loader
			}
		}
	}
	for lib := range libs {
		u.Files[guestPath(lib, merged)] = lib
	}
	return u, nil
}
