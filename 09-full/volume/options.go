//go:build linux

package volume

import (
	"fmt"
)

// checkOptions reads the --opt of `volume create` as the local driver
// does: type, device and o, as mount(8) would take them (o is checked
// as --tmpfs's options, by the caller: 09-full/security.AddTmpfs). berth's local
// driver makes a directory (no options) or a tmpfs (type=tmpfs,
// device=tmpfs, o=size=…,mode=…,uid=…,gid=…); it mounts no device and
// no NFS share (a host path is what a bind is for), and says so.
func checkOptions(opts map[string]string) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range opts {
		switch k {
		case "type", "device", "o":
			out[k] = v
		default:
			return nil, fmt.Errorf("invalid option key: %q (the local driver takes type, device and o)", k)
		}
	}
	if len(out) == 0 {
		return out, nil
	}
	if out["type"] != "tmpfs" || (out["device"] != "" && out["device"] != "tmpfs") {
		return nil, fmt.Errorf("volume options type=%q device=%q: berth's local driver makes tmpfs volumes (type=tmpfs,device=tmpfs) or plain ones; for a host directory use a bind (-v /host:/path)", out["type"], out["device"])
	}
	return out, nil
}
