//go:build linux

package diff

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth/05-user/userns"
)

// Owners: a container in a user namespace of its own writes its layer with host
// ids: its root is the user who ran it (rootless) or, say, 100000
// (--uidmap 0:100000:65536). A layer tarball must carry the ids the
// container saw, as Docker's commit of a remapped container does. And a
// copy made without root could not keep an owner outside the map (see
// copier): diff must not call that a change.
type Owners struct {
	UIDs, GIDs []specs.LinuxIDMapping
	Inside     bool // seen from inside the container's user namespace: its ids already
}

// overflowID is what the kernel shows for an id a namespace does not map
// (/proc/sys/kernel/overflowuid).
const overflowID = 65534

// container is the owner the container sees for a host owner.
func (o Owners) container(uid, gid uint32) (uint32, uint32) {
	if len(o.UIDs) == 0 || o.Inside {
		return uid, gid
	}
	return fromHost(o.UIDs, uid), fromHost(o.GIDs, gid)
}

func fromHost(m []specs.LinuxIDMapping, id uint32) uint32 {
	if in, ok := userns.FromHost(m, id); ok {
		return in
	}
	return overflowID
}

// copied is the owner a rootless copy of a file owned by uid:gid gets:
// the same where the map has it, else the container's root's. Seen from
// inside, an id the map lacks shows as the overflow id, and root is 0.
func (o Owners) copied(uid, gid uint32) (uint32, uint32) {
	if o.Inside {
		return insideCopiedID(uid), insideCopiedID(gid)
	}
	return copiedID(o.UIDs, uid), copiedID(o.GIDs, gid)
}

func insideCopiedID(id uint32) uint32 {
	if id == overflowID {
		return 0
	}
	return id
}

func copiedID(m []specs.LinuxIDMapping, id uint32) uint32 {
	if _, ok := userns.FromHost(m, id); ok || len(m) == 0 {
		return id
	}
	root, _ := userns.ToHost(m, 0)
	return root
}
