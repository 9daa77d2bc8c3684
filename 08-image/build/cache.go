//go:build linux

package build

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/08-image/store"
)

// The build cache: a file per step made, named by the digest of the
// step's key, holding the id of the image the step made (then, for whoever
// reads it, the key itself). The key is what the step's result depends
// on, as data (JSON), never its history text: two instructions that read
// the same in history (ENV A="x B=y" and ENV A=x B=y) are two keys. An
// image removed since is simply not found, and the step runs again; a
// file of an older key scheme is never named by a key, never read.
//
// <data-root>/images/buildcache/<sha256 of the key's JSON>:
//
//	sha256:<id of the image>
//	{"scheme":2,"parent":"sha256:…","cmd":"RUN",…}
type stepKey struct {
	Scheme int      `json:"scheme"` // 2 (1 was parent id + created_by)
	Parent string   `json:"parent"` // the image the step starts from, or "scratch"
	Cmd    string   `json:"cmd"`    // RUN, COPY, ENV...
	Exec   bool     `json:"exec"`   // the exec (JSON) form
	Flags  []string `json:"flags,omitempty"`
	Args   []string `json:"args"`            // as the parser gave them; RUN: the argv it runs
	Words  []string `json:"words,omitempty"` // the arguments expanded; ENV and LABEL: NAME=value each
	Shell  []string `json:"shell,omitempty"` // the SHELL in force (a metadata step's history shows it)
	Env    []string `json:"env,omitempty"`   // RUN: the build args it sees, sorted
	Copy   *copyKey `json:"copy,omitempty"`
	// Config is the image config after a metadata step (ENV, CMD...,
	// WORKDIR, ARG): what the step makes.
	Config *ocispec.ImageConfig `json:"config,omitempty"`
}

// copyKey is what a COPY or ADD copied, and where.
type copyKey struct {
	Kind    string `json:"kind"`    // file, dir, multi, archive
	Content string `json:"content"` // digest of what was staged: paths, modes, owners, link targets, contents
	Dest    string `json:"dest"`    // absolute, as resolved from WORKDIR
	Chown   string `json:"chown,omitempty"`
	From    string `json:"from,omitempty"`
}

// key starts the key of the step in on the stage's current image.
func (b *builder) key(st *stage, in instruction) stepKey {
	k := stepKey{Scheme: 2, Parent: "scratch", Cmd: in.cmd, Exec: in.json, Flags: in.flags, Args: in.args}
	if st.img != nil {
		k.Parent = st.img.ID().String()
	}
	return k
}

// metaKey is the key of a metadata step (and WORKDIR's): the instruction,
// its words as expanded with x (nil: not expanded, ARG), the SHELL, and
// the config it makes.
func (b *builder) metaKey(st *stage, in instruction, x *expander, cfg ocispec.ImageConfig) stepKey {
	k := b.key(st, in)
	k.Shell, k.Config = st.ms.shell, &cfg
	if x == nil {
		return k
	}
	switch in.cmd { // as applyMeta expands them (it did already: no error)
	case "ENV", "LABEL":
		kvs, _ := x.keyValues(in)
		for _, kv := range kvs {
			k.Words = append(k.Words, kv[0]+"="+kv[1])
		}
	case "USER", "STOPSIGNAL", "WORKDIR", "EXPOSE", "VOLUME":
		k.Words, _ = x.words(in, in.args)
	}
	return k
}

// cacheFile is the key's file, and the key as JSON (one line, > as >).
func (b *builder) cacheFile(key stepKey) (string, []byte) {
	var j bytes.Buffer
	enc := json.NewEncoder(&j)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(key); err != nil {
		panic(err) // strings, bools and a config: always encodes
	}
	sum := sha256.Sum256(j.Bytes())
	return filepath.Join(b.s.Root, "buildcache", hex.EncodeToString(sum[:])), j.Bytes()
}

// cached moves the stage onto the image the step made before, if any.
func (b *builder) cached(st *stage, key stepKey) bool {
	if b.o.NoCache {
		return false
	}
	p, _ := b.cacheFile(key)
	content, err := os.ReadFile(p)
	if err != nil {
		return false
	}
	id, _, _ := strings.Cut(string(content), "\n")
	d, err := digest.Parse(strings.TrimSpace(id))
	if err != nil {
		return false
	}
	img, err := b.s.Get(d.String())
	if err != nil {
		return false
	}
	st.use(img)
	fmt.Fprintf(b.o.Out, " ---> Using cache\n ---> %s\n", img.ShortID())
	return true
}

func (b *builder) remember(key stepKey, img *store.Image) error {
	p, j := b.cacheFile(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return store.WriteFileAtomic(p, []byte(img.ID().String()+"\n"+string(j)), 0o600)
}
