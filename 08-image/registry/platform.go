//go:build linux

package registry

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// HostPlatform is what this machine runs: linux, its architecture, and
// for arm the variant.
func HostPlatform() ocispec.Platform {
	p := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	switch runtime.GOARCH {
	case "arm64":
		p.Variant = "v8"
	case "arm":
		p.Variant = "v7"
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "GOARM" && s.Value != "" {
					p.Variant = "v" + strings.SplitN(s.Value, ",", 2)[0]
				}
			}
		}
	}
	return p
}

// ParsePlatform reads OS/ARCH[/VARIANT], as docker's --platform.
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return ocispec.Platform{}, fmt.Errorf("platform %q: want OS/ARCH[/VARIANT], such as linux/arm64", s)
	}
	p := ocispec.Platform{OS: parts[0], Architecture: normArch(parts[1])}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// PlatformString prints a platform as docker does: linux/arm/v7.
func PlatformString(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

func normArch(a string) string {
	switch a {
	case "x86_64", "x86-64":
		return "amd64"
	case "aarch64":
		return "arm64"
	case "armhf", "armel":
		return "arm"
	case "i386", "i686":
		return "386"
	}
	return a
}

// normVariant: arm64 without a variant is v8; an arm variant is v5…v8.
func normVariant(arch, v string) string {
	if arch == "arm64" && v == "v8" {
		return ""
	}
	return v
}

// PickManifest chooses the entry of an index for a platform, as
// containerd's platform matcher does: same OS and architecture; then the
// same variant, else an older arm variant this CPU also runs, else an
// entry that names no variant.
func PickManifest(idx ocispec.Index, want ocispec.Platform) (ocispec.Descriptor, error) {
	arch := normArch(want.Architecture)
	wv := normVariant(arch, want.Variant)
	best, bestScore := -1, 0
	var listed []string
	for i, m := range idx.Manifests {
		p := m.Platform
		if p == nil || m.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
			continue
		}
		listed = append(listed, PlatformString(*p))
		if p.OS != want.OS || normArch(p.Architecture) != arch {
			continue
		}
		hv := normVariant(arch, p.Variant)
		score := 0
		switch {
		case hv == wv:
			score = 100
		case wv == "":
			score = 50
		case arch == "arm" && hv != "" && hv < wv: // v6 runs on a v7 CPU
			score = 50 + int(hv[len(hv)-1]-'0')
		case hv == "":
			score = 10
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	if best < 0 {
		sort.Strings(listed)
		has := "no platform"
		if len(listed) > 0 {
			has = strings.Join(listed, ", ")
		}
		return ocispec.Descriptor{}, fmt.Errorf("no image for %s in its index (it has %s)", PlatformString(want), has)
	}
	return idx.Manifests[best], nil
}
