//go:build linux

package image

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/moby/sys/user"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth/01-uts/spine"
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
// "1000:100") into ids as runc does, with github.com/moby/sys/user, from
// the image's /etc/passwd and /etc/group as the merged layers (top first)
// show them. A name not found is an error; a number needs no entry, as
// with docker; the supplementary groups are those that list the user, when
// USER names no group. A malformed line that the lookup could match is
// refused (users.go), never read as id 0.
func ResolveUser(spec string, layers []string) (User, error) {
	t := View{Layers: layers}
	passwd, err := readIDFile(t, "/etc/passwd")
	if err != nil {
		return User{}, err
	}
	group, err := readIDFile(t, "/etc/group")
	if err != nil {
		return User{}, err
	}
	name, grp, hasGroup := strings.Cut(spec, ":")
	// The lines that could answer: the name asked for, or the uid (0 for
	// an empty USER, as the library takes it).
	uid := -1
	if id, ok := parseID(name); ok {
		uid = id
	} else if name == "" {
		uid = 0
	}
	if err := passwd.refuse(names(nonNumeric(name), 2, uid)); err != nil {
		return User{}, err
	}
	if hasGroup {
		gid := -1
		if id, ok := parseID(grp); ok {
			gid = id
		}
		if err := group.refuse(names(nonNumeric(grp), 2, gid)); err != nil {
			return User{}, err
		}
	}
	eu, err := user.GetExecUser(spec, nil, passwd.reader(), group.reader())
	switch {
	case errors.Is(err, user.ErrNoPasswdEntries):
		return User{}, fmt.Errorf("user %q: no such user in the image's /etc/passwd", name)
	case errors.Is(err, user.ErrNoGroupEntries):
		return User{}, fmt.Errorf("group %q: no such group in the image's /etc/group", grp)
	case err != nil:
		return User{}, fmt.Errorf("user %q: %w", spec, err)
	}
	// The library adds the groups that list the user by the name of the
	// passwd entry it matched: a malformed group line that lists it is
	// one the lookup would have read.
	if !hasGroup {
		if matched := passwdName(passwd, eu.Uid, name); matched != "" {
			if err := group.refuse(func(f []string) bool {
				return len(f) > 3 && slices.Contains(strings.Split(f[3], ","), matched)
			}); err != nil {
				return User{}, err
			}
		}
	}
	u := User{UID: uint32(eu.Uid), GID: uint32(eu.Gid), Home: eu.Home}
	for _, g := range eu.Sgids {
		u.AdditionalGids = append(u.AdditionalGids, uint32(g))
	}
	return u, nil
}

// passwdName is the name of the passwd entry the library matched: the
// name asked for, or the first well-formed entry with the uid; "" if none.
func passwdName(passwd *idFile, uid int, asked string) string {
	if asked != "" && nonNumeric(asked) != "" {
		return asked
	}
	us, err := user.ParsePasswdFilter(orEmpty(passwd.reader()), func(u user.User) bool { return u.Uid == uid })
	if err != nil || len(us) == 0 {
		return ""
	}
	return us[0].Name
}

// nonNumeric is s if it names a user or group by name, "" if by number.
func nonNumeric(s string) string {
	if _, ok := parseID(s); ok {
		return ""
	}
	return s
}

// SpecUser is u as the runtime spec says it.
func (u User) SpecUser() specs.User {
	return specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGids}
}

// ApplyConfig gives the container what an image's config says, as docker
// run does: the process (ENTRYPOINT and CMD, or the command line's
// arguments after the ENTRYPOINT: ProcessArgs), the ENV (before the
// command line's -e, which the spine applies last), and the WORKDIR. It
// returns the user to run as: userFlag if given (-u), else the image's
// USER, for the caller to resolve in the image's own files.
func ApplyConfig(c *spine.Container, cfg ocispec.ImageConfig, userFlag string) string {
	c.Spec.Process.Args = ProcessArgs(cfg, c.Spec.Process.Args)
	for _, kv := range cfg.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			c.SetEnv(k, v)
		}
	}
	if cfg.WorkingDir != "" {
		c.Spec.Process.Cwd = cfg.WorkingDir
	}
	if userFlag != "" {
		return userFlag
	}
	return cfg.User
}

// UniqueLayers is dirs with each directory once, in its first place: an
// image may hold the same layer twice, and overlay refuses a lower twice.
func UniqueLayers(dirs []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, d := range dirs {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// HasEnv reports whether env sets key.
func HasEnv(env []string, key string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, key+"=") {
			return true
		}
	}
	return false
}
