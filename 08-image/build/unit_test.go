//go:build linux

package build

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"berth/07-unionfs/layertest"
	"berth/08-image/image"
)

func TestParseDockerfile(t *testing.T) {
	df, err := parseDockerfile(strings.NewReader(`# syntax is ignored
ARG TAG=1
FROM busybox:${TAG} AS Build
RUN echo one \
    two
COPY --chown=1:2 a b /dst/
FROM scratch
CMD ["sh"]
`))
	require.NoError(t, err)
	assert.Equal(t, 6, df.steps)
	require.Len(t, df.metaArgs, 1)
	require.Len(t, df.stages, 2)
	assert.Equal(t, "build", df.stages[0].name)
	assert.Equal(t, []string{"busybox:${TAG}", "AS", "Build"}, df.stages[0].from.args)
	run := df.stages[0].instrs[0]
	assert.Equal(t, "RUN", run.cmd)
	assert.Equal(t, 4, run.line)
	assert.Equal(t, []string{"echo one     two"}, run.args)
	assert.False(t, run.json)
	cp := df.stages[0].instrs[1]
	assert.Equal(t, []string{"--chown=1:2"}, cp.flags)
	assert.Equal(t, []string{"a", "b", "/dst/"}, cp.args)
	assert.True(t, df.stages[1].instrs[0].json)

	for src, want := range map[string]string{
		"FROM a\nONBUILD RUN x\n":         "Dockerfile line 2: ONBUILD is not supported",
		"FROM a\n\n\nfrobnicate\n":        "Dockerfile line 4: unknown instruction FROBNICATE",
		"FROM a\nRUN --mount=x true\n":    "Dockerfile line 2: RUN --mount: RUN takes no flags",
		"FROM a\nSHELL sh -c\n":           `Dockerfile line 2: SHELL needs the JSON form`,
		"FROM a AS x\nFROM b AS x\n":      "Dockerfile line 2: FROM x: a stage of that name is defined above (line 1)",
		"FROM a AS b c\n":                 "Dockerfile line 1: FROM takes IMAGE [AS NAME]",
		"ENV A=1\nFROM a\n":               "Dockerfile line 1: ENV before FROM",
		"# nothing\n":                     "file with no instructions",
		"FROM a\nRUN <<EOF\nx\nEOF\n":     "heredoc",
		"FROM a\nWORKDIR\n":               "Dockerfile line 2: WORKDIR needs an argument",
		"FROM --platform=linux/arm64 a\n": "FROM --platform: FROM takes no flags",
	} {
		_, err := parseDockerfile(strings.NewReader(src))
		if assert.Error(t, err, src) {
			assert.Contains(t, err.Error(), want, src)
		}
	}
}

// applyMeta, instruction by instruction, on a config, as build and
// import --change use it.
func TestApplyMeta(t *testing.T) {
	apply := func(cfg *ocispec.ImageConfig, ms *metaState, line string) (string, error) {
		df, err := parseDockerfile(strings.NewReader("FROM x\n" + line + "\n"))
		require.NoError(t, err)
		in := df.stages[0].instrs[0]
		return applyMeta(cfg, in, newExpander(df.escape, envList(cfg.Env)), ms)
	}
	cfg := ocispec.ImageConfig{Cmd: []string{"sh"}, Env: []string{"PATH=/bin", "A=old"}}
	ms := &metaState{shell: defaultShell}
	for _, c := range []struct{ line, history string }{
		{`ENV A=new B=$A C="two words" D=${UNSET:-dflt}`, "ENV A=new B=old C=two words D=dflt"},
		{`ENV OLD the legacy form`, "ENV OLD=the legacy form"},
		{`LABEL "com.example.x"="y z" k=v`, "LABEL com.example.x=y z k=v"},
		{`WORKDIR app`, "WORKDIR /app"},
		{`WORKDIR ../srv/./x`, "WORKDIR /srv/x"},
		{`USER $A`, "USER new"},
		{`EXPOSE 80 53/udp 8000-8001`, "EXPOSE 80/tcp 53/udp 8000/tcp 8001/tcp"},
		{`VOLUME ["/data", "/logs"]`, "VOLUME [/data /logs]"},
		{`STOPSIGNAL SIGQUIT`, "STOPSIGNAL SIGQUIT"},
		{`ENTRYPOINT ["/entry"]`, `ENTRYPOINT ["/entry"]`},
		{`CMD run $A`, `CMD ["/bin/sh" "-c" "run $A"]`},
	} {
		h, err := apply(&cfg, ms, c.line)
		require.NoError(t, err, c.line)
		assert.Equal(t, c.history, h)
	}
	assert.Equal(t, []string{"PATH=/bin", "A=new", "B=old", "C=two words", "D=dflt", "OLD=the legacy form"}, cfg.Env)
	assert.Equal(t, map[string]string{"com.example.x": "y z", "k": "v"}, cfg.Labels)
	assert.Equal(t, "/srv/x", cfg.WorkingDir)
	assert.Equal(t, "new", cfg.User)
	assert.Len(t, cfg.ExposedPorts, 4)
	assert.Equal(t, []string{"/entry"}, cfg.Entrypoint)
	assert.Equal(t, []string{"/bin/sh", "-c", "run $A"}, cfg.Cmd, "no expansion: the shell does it")

	// ENTRYPOINT drops a CMD the stage did not set (an inherited one).
	cfg = ocispec.ImageConfig{Cmd: []string{"sh"}}
	ms = &metaState{shell: defaultShell}
	_, err := apply(&cfg, ms, `ENTRYPOINT ["echo"]`)
	require.NoError(t, err)
	assert.Nil(t, cfg.Cmd)
	_, err = apply(&cfg, ms, `SHELL ["/bin/bash", "-xc"]`)
	require.NoError(t, err)
	_, err = apply(&cfg, ms, `ENTRYPOINT exec app`)
	require.NoError(t, err)
	assert.Equal(t, []string{"/bin/bash", "-xc", "exec app"}, cfg.Entrypoint)

	for line, want := range map[string]string{
		"EXPOSE 0":         "not a port",
		"EXPOSE 80/icmp":   "tcp, udp or sctp",
		"EXPOSE 1-5000":    "at most 1000",
		"STOPSIGNAL NOPE":  "not a signal name",
		"STOPSIGNAL 99":    "not a signal number",
		`USER ""`:          "needs a user",
		"ENV A=${B:?must}": "must",
	} {
		_, err := apply(&cfg, ms, line)
		if assert.Error(t, err, line) {
			assert.Contains(t, err.Error(), want, line)
		}
	}
}

func TestApplyChanges(t *testing.T) {
	cfg := ocispec.ImageConfig{Env: []string{"X=1"}}
	require.NoError(t, ApplyChanges(&cfg, []string{`CMD ["sh"]`, "ENV Y=$X", "WORKDIR /w"}))
	assert.Equal(t, []string{"sh"}, cfg.Cmd)
	assert.Equal(t, []string{"X=1", "Y=1"}, cfg.Env)
	assert.Equal(t, "/w", cfg.WorkingDir)
	err := ApplyChanges(&cfg, []string{"COPY a /"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `--change "COPY a /": COPY cannot change an image config`)
	err = ApplyChanges(&cfg, []string{"EXPOSE x"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `--change "EXPOSE x": EXPOSE x: not a port`)
}

// The context: .dockerignore (with exceptions), wildcards, ".." refused,
// symlinks followed inside the context only.
func TestContextSources(t *testing.T) {
	dir := t.TempDir()
	for rel, content := range map[string]string{
		"a.txt": "", "b.txt": "", "keep.log": "", "x.log": "", "d/c.txt": "", "d/e/f.txt": "",
		"node_modules/m.js": "", ".dockerignore": "*.log\n!keep.log\nnode_modules\n# a comment\n",
	} {
		p := filepath.Join(dir, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(dir, "abs-link")))
	require.NoError(t, os.Symlink("../../../d/c.txt", filepath.Join(dir, "up-link")))
	src, err := openContext(dir)
	require.NoError(t, err)
	in := instruction{cmd: "COPY", where: "Dockerfile line 2"}

	got, err := src.sources(in, []string{"*.txt", "*.log", "d/*/f.txt", "/a.txt", "up-link"})
	require.NoError(t, err)
	assert.Equal(t, []string{"/a.txt", "/b.txt", "/keep.log", "/d/e/f.txt", "/a.txt", "/d/c.txt"}, got)
	for _, c := range []struct{ arg, want string }{
		{"x.log", "x.log: file not found in build context or excluded by .dockerignore"},
		{"node_modules/m.js", "excluded by .dockerignore"},
		{"abs-link", "(a symlink leads only to a file of the build context)"},
		{"../a.txt", "forbidden path outside the build context"},
		{"nothing*", "no source files were specified"},
		{"[", "syntax error in pattern"},
	} {
		_, err := src.sources(in, []string{c.arg})
		if assert.Error(t, err, c.arg) {
			assert.Contains(t, err.Error(), c.want, c.arg)
		}
	}
}

// tree reads layers as overlay shows them: the top entry wins, directories
// merge, a whiteout hides, an opaque directory hides what is below it, and
// securejoin resolves symlinks inside the tree's root.
func TestTreeLikeOverlay(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: whiteouts are 0/0 character devices and opaque marks trusted.* xattrs: both need root")
	}
	base, mid, top := t.TempDir(), t.TempDir(), t.TempDir()
	write := func(dir, rel, content string) {
		p := filepath.Join(dir, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	write(base, "etc/passwd", "base")
	write(base, "etc/group", "base")
	write(base, "opt/old/file", "hidden by opaque")
	write(base, "var/lib/x", "base")
	write(mid, "etc/hosts", "mid")
	write(mid, "opt/new", "mid")
	require.NoError(t, unix.Setxattr(filepath.Join(mid, "opt"), "trusted.overlay.opaque", []byte("y"), 0))
	require.NoError(t, os.MkdirAll(filepath.Join(top, "etc"), 0o755))
	require.NoError(t, unix.Mknod(filepath.Join(top, "etc", "group"), unix.S_IFCHR, 0))
	write(top, "etc/passwd", "top")
	require.NoError(t, os.Symlink("/../../../etc", filepath.Join(top, "link")))
	require.NoError(t, os.Mkdir(filepath.Join(mid, "var"), 0o755))
	require.NoError(t, os.Symlink("lib", filepath.Join(mid, "var", "l")))
	tr := image.View{Layers: []string{top, mid, base}}

	names, err := tr.ReadDir("/etc")
	require.NoError(t, err)
	assert.Equal(t, []string{"hosts", "passwd"}, names)
	names, err = tr.ReadDir("/opt")
	require.NoError(t, err)
	assert.Equal(t, []string{"new"}, names)
	_, real, ok, err := tr.Stat("/etc/passwd")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, filepath.Join(top, "etc/passwd"), real)
	for _, gone := range []string{"/etc/group", "/opt/old/file", "/nope", "/etc/passwd/x"} {
		_, _, ok, err := tr.Stat(gone)
		require.NoError(t, err)
		assert.False(t, ok, gone)
	}
	r, err := tr.Resolve("/", "/link/hosts")
	require.NoError(t, err)
	assert.Equal(t, "/etc/hosts", r, "an absolute link leads into the tree, not to the host's /etc")
	r, err = tr.Resolve("/var", "l/x")
	require.NoError(t, err)
	assert.Equal(t, "/var/lib/x", r)
}

// A Dockerfile is bounded before any step runs: its size (buildx's 2 MiB),
// its instructions (10,000), and what one word's variables may expand to.
func TestDockerfileBounds(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
		return p
	}
	_, err := readDockerfile(write("many", "FROM busybox\n"+strings.Repeat("RUN true\n", 200000)))
	assert.EqualError(t, err, "the Dockerfile has 200001 instructions, more than 10000: refused")
	_, err = readDockerfile(write("exactly", "FROM busybox\n"+strings.Repeat("RUN true\n", maxInstructions-1)))
	assert.NoError(t, err, "10,000 instructions are allowed")
	_, err = readDockerfile(write("big", "FROM busybox\n"+strings.Repeat("# a comment, many times over\n", 80000)))
	assert.ErrorContains(t, err, "is over 2MiB: refused")
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, unix.Mkfifo(fifo, 0o644))
	_, err = readDockerfile(fifo)
	assert.ErrorContains(t, err, "is not a regular file: refused")

	// ENV A=$A$A, line after line, doubles A: the expansion is bounded.
	in := instruction{cmd: "ENV", where: "Dockerfile line 3"}
	x := newExpander('\\', envList{"A=" + strings.Repeat("x", 600<<10)})
	_, err = x.word(in, "$A")
	require.NoError(t, err)
	_, err = x.word(in, "$A$A")
	assert.EqualError(t, err, `Dockerfile line 3: ENV "$A$A": its variables expand to more than 1MiB: refused`)
	_, err = x.word(in, "${A//?/xxxxxxxx}")
	assert.ErrorContains(t, err, "${NAME/pattern/replacement} is not supported by berth's builder")
	out, err := newExpander('\\', envList{"A=a/b"}).word(in, "${A:-x/y}/$A")
	require.NoError(t, err)
	assert.Equal(t, "a/b/a/b", out, "a slash elsewhere is no substitution")

	ctx := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(ctx, ".dockerignore"), bytes.Repeat([]byte("node_modules\n"), 200000), 0o644))
	_, err = openContext(ctx)
	assert.EqualError(t, err, ".dockerignore is over 2MiB: refused")
}

// COPY --chown looks names up the same way.
func TestChownRefusesMalformedEntries(t *testing.T) {
	img := image.View{Layers: []string{layertest.Tree(t, map[string]string{
		"etc/passwd": "app:x:1000:1000::/:/bin/sh\nbad:x:1x:1::/:/bin/sh\n",
		"etc/group":  "app:x:1000:\nwheel:x:w:\n",
	})}}
	uid, gid, err := chownIDs("app:app", img)
	require.NoError(t, err)
	assert.Equal(t, []int{1000, 1000}, []int{uid, gid})
	_, _, err = chownIDs("bad", img)
	assert.ErrorContains(t, err, `/etc/passwd line 2 "bad:x:1x:1::/:/bin/sh": uid "1x" is not a number`)
	_, _, err = chownIDs("app:wheel", img)
	assert.ErrorContains(t, err, `/etc/group line 2 "wheel:x:w:": gid "w" is not a number`)
	_, _, err = chownIDs("nobody", img)
	assert.ErrorContains(t, err, `--chown: no user "nobody" in the image's /etc/passwd`)
}
