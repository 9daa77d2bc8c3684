//go:build linux

package specgen

import (
	"fmt"
	"os"
)

// usernsMode reads --userns, podman's choices where they fit berth:
//
//   - host: as root, no user namespace, which is already the default
//     (Docker's only value). Without root there is no running in the
//     host's user namespace: a container needs one of its own to mount,
//     and berth's default is the smallest, in which you are root (as
//     podman's rootless host is the user namespace it always makes). So
//     it names the default, and contradicts any map flag.
//   - keep-id, without root: your uid and gid are the same ids inside,
//     the rest of the container's from your subordinate ranges (stage
//     05's KeepIDMap), and the command runs as you unless --user says
//     otherwise, so what it writes in a bind mount is yours on the host.
//
// Anything else is refused: berth has no auto, nomap, ns:PATH or
// container:ID.
func usernsMode(o *Options, rootless bool) error {
	u := &o.UserNS
	maps := u.MapRootUser || u.MapSubIDs || len(u.UIDMaps)+len(u.GIDMaps) > 0
	switch o.UserNSMode {
	case "":
		return nil
	case "host":
		if maps {
			return fmt.Errorf("--userns=host: no user namespace of its own, but --map-root-user, --map-subids or --uidmap asks for one")
		}
		return nil
	case "keep-id":
		if !rootless {
			return fmt.Errorf("--userns=keep-id is for a user without root: as root your ids are the host's own (for a user namespace, give --uidmap)")
		}
		u.KeepID = true
		if o.User == "" {
			o.User = fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
		}
		return nil
	}
	return fmt.Errorf("--userns %q: berth knows host and keep-id (without root)", o.UserNSMode)
}
