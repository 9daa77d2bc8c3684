//go:build linux

package network

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"berth/internal/lockfile"
)

// IPAM hands out the addresses of one subnet, one per container, and never
// the same one twice. Its whole state is a small JSON file per subnet in
// Dir (readable with cat), changed only under an flock on Dir/ipam.lock, so
// that any number of berth processes can allocate at once. A lease names the
// container that holds it; a lease whose holder is dead (Alive says no) is
// taken back by the next allocation, so a runtime killed before it could
// release its address does not leak it.
type IPAM struct {
	Dir    string
	Subnet *net.IPNet
	// Alive reports whether the container with this id still runs.
	Alive func(id string) bool
	// Range, when set (a user network's --ip-range), is the part of the
	// subnet Allocate hands out from; --ip may still ask for any address.
	Range *net.IPNet
}

// bounds are the first address Allocate may hand out and how many there
// are, counted signed: an --ip-range without a container address (a /32 on
// the network's own address) has none, where the unsigned difference of
// last and first would wrap to four billion and reach past the subnet.
func (p *IPAM) bounds() (net.IP, int64) {
	first, last := hostRange(p.Subnet)
	if p.Range != nil {
		ones, bits := p.Range.Mask.Size()
		lo := p.Range.IP.To4().Mask(p.Range.Mask)
		hi := addIP(lo, uint32(1)<<uint(bits-ones)-1)
		if ipToUint(lo) > ipToUint(first) {
			first = lo
		}
		if ipToUint(hi) < ipToUint(last) {
			last = hi
		}
	}
	return first, max(0, int64(ipToUint(last))-int64(ipToUint(first))+1)
}

// RangeHasHosts reports whether the range of the subnet holds at least one
// container address (not the network's, the gateway's or the broadcast
// address): `network create --ip-range` refuses one that does not.
func RangeHasHosts(subnet, rng *net.IPNet) bool {
	_, n := (&IPAM{Subnet: subnet, Range: rng}).bounds()
	return n > 0
}

// leaseFile is what the JSON file holds.
type leaseFile struct {
	Subnet string            `json:"subnet"`
	Last   string            `json:"last,omitempty"` // the address handed out last: the search goes on from there
	Leases map[string]string `json:"leases"`         // address -> container id
}

// ErrExhausted is returned when every address of the subnet is leased.
var ErrExhausted = errors.New("no free address")

// Gateway is the first address of the subnet: the bridge's.
func Gateway(subnet *net.IPNet) net.IP { return addIP(subnet.IP.To4(), 1) }

// path is the lease file of this subnet, e.g. leases-10.88.0.0-16.json.
func (p *IPAM) path() string {
	ones, _ := p.Subnet.Mask.Size()
	return filepath.Join(p.Dir, fmt.Sprintf("leases-%s-%d.json", p.Subnet.IP, ones))
}

// Path is the lease file (readable with cat).
func (p *IPAM) Path() string { return p.path() }

// Allocate leases a free address to id. An older lease of the same id is
// given up first: a container id belongs to one running container at a time.
func (p *IPAM) Allocate(id string) (net.IP, error) {
	var ip net.IP
	err := p.update(func(lf *leaseFile) error {
		p.reclaim(lf)
		for addr, holder := range lf.Leases {
			if holder == id {
				delete(lf.Leases, addr)
			}
		}
		first, size := p.bounds()
		// The search goes on after the address handed out last, if it
		// is in the bounds (offset from first).
		start := int64(0)
		if prev := net.ParseIP(lf.Last).To4(); prev != nil {
			if off := int64(ipToUint(prev)) - int64(ipToUint(first)); off >= 0 && off < size-1 {
				start = off + 1
			}
		}
		for i := int64(0); i < size; i++ {
			cand := addIP(first, uint32((start+i)%size))
			if _, taken := lf.Leases[cand.String()]; !taken {
				lf.Leases[cand.String()] = id
				lf.Last = cand.String()
				ip = cand
				return nil
			}
		}
		return fmt.Errorf("%w in %s: all %d addresses are leased (%s): stop some containers or use a larger --subnet",
			ErrExhausted, p.Subnet, size, p.path())
	})
	return ip, err
}

// AllocateAddr leases the address asked for (--ip) to id: it must be in
// the subnet, not the network, gateway or broadcast address, and free.
func (p *IPAM) AllocateAddr(id string, ip net.IP) error {
	ip = ip.To4()
	first, last := hostRange(p.Subnet)
	if ip == nil || !p.Subnet.Contains(ip) || ipToUint(ip) < ipToUint(first) || ipToUint(ip) > ipToUint(last) {
		return fmt.Errorf("address %s is not a container address of %s", ip, p.Subnet)
	}
	return p.update(func(lf *leaseFile) error {
		p.reclaim(lf)
		for addr, holder := range lf.Leases {
			if holder == id {
				delete(lf.Leases, addr)
			}
		}
		if holder, taken := lf.Leases[ip.String()]; taken {
			return fmt.Errorf("address %s is already in use (by %s)", ip, holder)
		}
		lf.Leases[ip.String()] = id
		return nil
	})
}

// Release gives up id's lease, if it has one. Releasing twice is fine.
func (p *IPAM) Release(id string) error {
	return p.update(func(lf *leaseFile) error {
		for addr, holder := range lf.Leases {
			if holder == id {
				delete(lf.Leases, addr)
			}
		}
		return nil
	})
}

// Leases returns address -> holder for the leases of live holders.
func (p *IPAM) Leases() (map[string]string, error) {
	var out map[string]string
	err := p.update(func(lf *leaseFile) error {
		p.reclaim(lf)
		out = make(map[string]string, len(lf.Leases))
		for k, v := range lf.Leases {
			out[k] = v
		}
		return nil
	})
	return out, err
}

// reclaim drops the leases of dead holders.
func (p *IPAM) reclaim(lf *leaseFile) {
	if p.Alive == nil {
		return
	}
	for addr, holder := range lf.Leases {
		if !p.Alive(holder) {
			delete(lf.Leases, addr)
		}
	}
}

// update runs fn on the lease file under the lock and writes the result
// back (atomically: a new file renamed over the old one) if it changed.
func (p *IPAM) update(fn func(*leaseFile) error) error {
	unlock, err := lockFile(filepath.Join(p.Dir, "ipam.lock"))
	if err != nil {
		return err
	}
	defer unlock()

	lf := &leaseFile{Subnet: p.Subnet.String(), Leases: map[string]string{}}
	b, err := os.ReadFile(p.path())
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("read leases: %w", err)
	default:
		if err := json.Unmarshal(b, lf); err != nil {
			return fmt.Errorf("decode %s: %w (remove the file if no container runs)", p.path(), err)
		}
		if lf.Leases == nil {
			lf.Leases = map[string]string{}
		}
	}
	before := fmt.Sprint(lf.Last, sortedLeases(lf.Leases))
	if err := fn(lf); err != nil {
		return err
	}
	if fmt.Sprint(lf.Last, sortedLeases(lf.Leases)) == before {
		return nil
	}
	if len(lf.Leases) == 0 {
		// Nothing leased: no file, so nothing is left behind.
		if err := os.Remove(p.path()); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", p.path(), err)
		}
		return nil
	}
	out, err := json.MarshalIndent(lf, "", "  ")
	if err != nil {
		return fmt.Errorf("encode leases: %w", err)
	}
	tmp := p.path() + ".tmp"
	if err := os.WriteFile(tmp, append(out, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, p.path()); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

func sortedLeases(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k, v := range m {
		keys = append(keys, k+"="+v)
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

// lockFile takes an exclusive lock on path (creating it and its
// directory) and returns the function that drops it.
func lockFile(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	l, err := lockfile.Acquire(context.Background(), path, lockfile.Exclusive)
	if err != nil {
		return nil, err
	}
	return l.Unlock, nil
}

// hostRange is the first and last address a container may get: not the
// network address, not the gateway (.1), not the broadcast address.
func hostRange(subnet *net.IPNet) (net.IP, net.IP) {
	base := subnet.IP.To4().Mask(subnet.Mask)
	ones, bits := subnet.Mask.Size()
	size := uint32(1) << uint(bits-ones)
	return addIP(base, 2), addIP(base, size-2)
}

func ipToUint(ip net.IP) uint32 { return binary.BigEndian.Uint32(ip.To4()) }

func addIP(ip net.IP, n uint32) net.IP {
	out := make(net.IP, 4)
	binary.BigEndian.PutUint32(out, ipToUint(ip)+n)
	return out
}
