//go:build linux

package image

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ProcessArgs is what runs, as docker run decides it: the ENTRYPOINT, then
// the command line's arguments, or the image's CMD when there are none.
func ProcessArgs(cfg ocispec.ImageConfig, args []string) []string {
	out := append([]string{}, cfg.Entrypoint...)
	if len(args) > 0 {
		return append(out, args...)
	}
	return append(out, cfg.Cmd...)
}

// User is a resolved USER: numeric ids for setuid, setgid and setgroups.
type User struct {
	UID, GID       uint32
	AdditionalGids []uint32
	Home           string // from /etc/passwd, for $HOME; "" if no entry
}

// ResolveUser turns a USER value ("", "1000", "nobody", "nobody:nogroup",
// "1000:100") into ids, reading /etc/passwd and /etc/group from the
// image's layers (top first) as they would read in the container. A name
// not found is an error; a number needs no entry, as with docker.
func ResolveUser(spec string, layers []string) (User, error) {
	if spec == "" {
		spec = "0"
	}
	name, group, hasGroup := strings.Cut(spec, ":")
	u := User{}
	var home struct{ found bool }
	if id, err := strconv.ParseUint(name, 10, 32); err == nil {
		u.UID = uint32(id)
		// The primary group of a numeric user is its passwd entry's, or 0.
		if e, ok, err := lookupFile(layers, "etc/passwd", func(f []string) bool { return len(f) > 3 && f[2] == name }); err != nil {
			return u, err
		} else if ok {
			gid, _ := strconv.ParseUint(e[3], 10, 32)
			u.GID, home.found = uint32(gid), true
			name = e[0]
			if len(e) > 5 {
				u.Home = e[5]
			}
		}
	} else {
		e, ok, err := lookupFile(layers, "etc/passwd", func(f []string) bool { return len(f) > 3 && f[0] == name })
		if err != nil {
			return u, err
		}
		if !ok {
			return u, fmt.Errorf("user %q: no such user in the image's /etc/passwd", name)
		}
		uid, err1 := strconv.ParseUint(e[2], 10, 32)
		gid, err2 := strconv.ParseUint(e[3], 10, 32)
		if err1 != nil || err2 != nil {
			return u, fmt.Errorf("user %q: bad /etc/passwd line", name)
		}
		u.UID, u.GID, home.found = uint32(uid), uint32(gid), true
		if len(e) > 5 {
			u.Home = e[5]
		}
	}
	if hasGroup {
		if id, err := strconv.ParseUint(group, 10, 32); err == nil {
			u.GID = uint32(id)
		} else {
			e, ok, err := lookupFile(layers, "etc/group", func(f []string) bool { return len(f) > 2 && f[0] == group })
			if err != nil {
				return u, err
			}
			if !ok {
				return u, fmt.Errorf("group %q: no such group in the image's /etc/group", group)
			}
			gid, _ := strconv.ParseUint(e[2], 10, 32)
			u.GID = uint32(gid)
		}
	}
	// Supplementary groups: every group that lists the user by name.
	if home.found {
		if err := eachLine(layers, "etc/group", func(f []string) {
			if len(f) < 4 {
				return
			}
			for _, m := range strings.Split(f[3], ",") {
				if m == name {
					if gid, err := strconv.ParseUint(f[2], 10, 32); err == nil && uint32(gid) != u.GID {
						u.AdditionalGids = append(u.AdditionalGids, uint32(gid))
					}
				}
			}
		}); err != nil {
			return u, err
		}
	}
	return u, nil
}

// SpecUser is u as the runtime spec says it.
func (u User) SpecUser() specs.User {
	return specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGids}
}

func lookupFile(layers []string, rel string, match func([]string) bool) ([]string, bool, error) {
	var found []string
	err := eachLine(layers, rel, func(f []string) {
		if found == nil && match(f) {
			found = f
		}
	})
	return found, found != nil, err
}

// eachLine calls fn with the colon-split fields of every line of the file
// rel as the merged tree shows it: the topmost layer that has it, unless
// a layer above deleted it (a whiteout) or hid its directory (opaque).
func eachLine(layers []string, rel string, fn func([]string)) error {
	f, err := openMerged(layers, rel)
	if err != nil || f == nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 4<<20))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fn(strings.Split(line, ":"))
	}
	return sc.Err()
}

// openMerged opens rel in the topmost layer that shows it; nil when no
// layer does. Paths resolve inside each layer (securejoin), never outside.
func openMerged(layers []string, rel string) (*os.File, error) {
	for _, dir := range layers {
		p, err := securejoin.SecureJoin(dir, rel)
		if err != nil {
			return nil, err
		}
		var st unix.Stat_t
		err = unix.Lstat(p, &st)
		switch {
		case err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG:
			f, err := os.Open(p)
			if err != nil {
				return nil, fmt.Errorf("open %s: %w", p, err)
			}
			return f, nil
		case err == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0:
			return nil, nil // a whiteout: deleted above the layers below
		case err != nil && !errors.Is(err, unix.ENOENT):
			return nil, fmt.Errorf("stat %s: %w", p, err)
		}
		if opaque(filepath.Dir(p)) {
			return nil, nil
		}
	}
	return nil, nil
}

func opaque(dir string) bool {
	for _, name := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		buf := make([]byte, 4)
		n, err := unix.Lgetxattr(dir, name, buf)
		if err == nil && n == 1 && buf[0] == 'y' {
			return true
		}
	}
	return false
}
