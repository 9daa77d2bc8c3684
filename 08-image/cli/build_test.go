//go:build linux

package cli_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/08-image/store"
	"berth/internal/testenv"
)

// buildContext writes a build context: a Dockerfile and files.
func buildContext(t *testing.T, dockerfile string, files map[string]string) string {
	t.Helper()
	if files == nil {
		files = map[string]string{}
	}
	files["Dockerfile"] = dockerfile
	return writeTree(t, files)
}

// leftovers lists what a build must not leave behind: container layers,
// container state, RUN locks.
func (e *runEnv) leftovers() []string {
	e.T.Helper()
	var out []string
	for _, dir := range []string{
		filepath.Join(e.Data, "layers", "containers"),
		testenv.StateRoot(e.Vars),
		filepath.Join(e.Data, "images", "builds"),
	} {
		entries, err := os.ReadDir(dir)
		if err != nil && !os.IsNotExist(err) {
			e.T.Fatal(err)
		}
		for _, en := range entries {
			out = append(out, filepath.Join(dir, en.Name()))
		}
	}
	staging, err := filepath.Glob(filepath.Join(e.Data, "layers", ".build-*")) // COPY's staging trees
	require.NoError(e.T, err)
	return append(out, staging...)
}

const appDockerfile = `FROM busybox
ARG WHO=nobody
ENV GREETING="hello there" PATH=/usr/bin:/bin
WORKDIR /app
COPY greeting.txt notes/ ./
RUN echo "RUN wrote this for $WHO" > made.txt && \
    echo 'app:x:1000:1000:app:/app:/bin/sh' >> /etc/passwd && chown 1000 made.txt
USER app
CMD ["sh", "-c", "cat greeting.txt made.txt note.md; echo $GREETING; pwd; id -u; echo WHO=$WHO"]
`

// A Dockerfile with the usual instructions builds; the image runs what
// the steps made; history tells the steps, newest first.
func TestBuild(t *testing.T) {
	e := newRunEnv(t)
	e.importBusybox()
	ctx := buildContext(t, appDockerfile, map[string]string{"greeting.txt": "hello\n", "notes/note.md": "a note\n"})
	out := e.OK("build", "-t", "app:1", "--build-arg", "WHO=learner", ctx)
	for _, want := range []string{
		"Step 1/8 : FROM busybox\n ---> ",
		"Step 5/8 : COPY greeting.txt notes/ ./\n ---> ",
		"Step 6/8 : RUN echo \"RUN wrote this for $WHO\" > made.txt &&",
		" ---> Running in build-",
		"Removing intermediate container build-",
		"Step 8/8 : CMD [\"sh\", \"-c\",",
		"Successfully tagged app:1\n",
	} {
		assert.Contains(t, out, want)
	}
	assert.Regexp(t, `Successfully built [0-9a-f]{12}\n`, out)
	assert.Empty(t, e.leftovers(), "no container layer, state or lock left")

	// What the steps made: COPY's files (a directory by its content), the
	// file RUN wrote with the ARG, ENV, WORKDIR, USER; the ARG is not kept.
	assert.Equal(t, "hello\nRUN wrote this for learner\na note\nhello there\n/app\n1000\nWHO=\n",
		e.OK("run", "--net", "none", "--rm", "--image", "app:1"))
	assert.Equal(t, "1000 0 made.txt\n0 0 greeting.txt\n",
		e.OK("run", "--net", "none", "--rm", "--image", "app:1", "stat", "-c", "%u %g %n", "made.txt", "greeting.txt"))

	// history: newest first, RUN and COPY with a layer of some size,
	// metadata steps 0B and no layer, as docker writes them.
	hist := e.OK("history", "--no-trunc", "app:1")
	lines := strings.Split(strings.TrimSpace(hist), "\n")
	require.Len(t, lines, 9, hist) // header, 7 steps after FROM, the import
	rows := []string{
		`<none>\s.*/bin/sh -c #\(nop\)  CMD \["sh" "-c" "cat greeting.txt .*"\]\s+0B`,
		`<none>\s.*/bin/sh -c #\(nop\)  USER app\s+0B`,
		`[0-9a-f]{12}\s.*\|1 WHO=learner /bin/sh -c echo "RUN wrote this for \$WHO" > made.txt .*\s+[1-9][0-9.]*k?B`,
		`[0-9a-f]{12}\s.*/bin/sh -c #\(nop\) COPY multi:[0-9a-f]{64} in /app\s+[1-9][0-9.]*k?B`,
		`[0-9a-f]{12}\s.*/bin/sh -c #\(nop\) WORKDIR /app\s+[1-9][0-9.]*B`,
		`<none>\s.*/bin/sh -c #\(nop\)  ENV GREETING=hello there PATH=/usr/bin:/bin\s+0B`,
		`<none>\s.*/bin/sh -c #\(nop\)  ARG WHO=nobody\s+0B`,
		`[0-9a-f]{12}\s.*berth import `,
	}
	for i, re := range rows {
		assert.Regexp(t, re, lines[i+1])
	}

	// images shows the result, not the intermediate images (-a does).
	imgs := e.OK("images")
	assert.Len(t, strings.Split(strings.TrimSpace(imgs), "\n"), 3, imgs)
	assert.Contains(t, imgs, "app ")
	all := e.OK("images", "-a")
	assert.Len(t, strings.Split(strings.TrimSpace(all), "\n"), 9, all) // + 6 intermediate
}

// The second build of the same context reuses every step; a change to a
// copied file or a build arg runs the steps from there on again.
func TestBuildCache(t *testing.T) {
	e := newRunEnv(t)
	e.importBusybox()
	ctx := buildContext(t, appDockerfile, map[string]string{"greeting.txt": "hello\n", "notes/note.md": "a note\n"})
	first := e.OK("build", "-t", "app", ctx)
	assert.NotContains(t, first, "Using cache")
	second := e.OK("build", "-t", "app", ctx)
	assert.Equal(t, 7, strings.Count(second, " ---> Using cache\n"), second)
	assert.NotContains(t, second, "Running in")
	assert.Equal(t, builtID(t, first), builtID(t, second))

	// Same arg value, given: the RUN's history text is the same, cached.
	third := e.OK("build", "--build-arg", "WHO=nobody", ctx)
	assert.Equal(t, builtID(t, first), builtID(t, third))
	// Another value: the RUN and what follows run again.
	other := e.OK("build", "--build-arg", "WHO=someone", ctx)
	assert.Equal(t, 4, strings.Count(other, "Using cache"), other)
	assert.Contains(t, other, "Running in")

	// Another content of a copied file: from the COPY on.
	require.NoError(t, os.WriteFile(filepath.Join(ctx, "greeting.txt"), []byte("changed\n"), 0o644))
	changed := e.OK("build", "-t", "app", ctx)
	assert.Equal(t, 3, strings.Count(changed, "Using cache"), changed)
	assert.Equal(t, "changed\n", e.OK("run", "--net", "none", "--rm", "--entrypoint", "cat", "--image", "app", "greeting.txt"))

	// --no-cache: every step again, another image.
	fresh := e.OK("build", "--no-cache", ctx)
	assert.NotContains(t, fresh, "Using cache")
	assert.NotEqual(t, builtID(t, changed), builtID(t, fresh))
	assert.Empty(t, e.leftovers())
}

func builtID(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`Successfully built ([0-9a-f]{12})`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	return m[1]
}

// ENTRYPOINT and CMD combine as docker combines them; the shell form goes
// through SHELL; ENTRYPOINT drops a CMD inherited from the base image.
func TestBuildEntrypointAndCmd(t *testing.T) {
	e := newRunEnv(t)
	e.importBusybox() // CMD ["sh"]
	run := func(img string, args ...string) string {
		return e.OK(append([]string{"run", "--net", "none", "--rm", "--image", img}, args...)...)
	}
	e.OK("build", "-t", "ep", buildContext(t, "FROM busybox\nENTRYPOINT [\"echo\", \"entry\"]\nCMD [\"default\", \"args\"]\n", nil))
	assert.Equal(t, "entry default args\n", run("ep"))
	assert.Equal(t, "entry mine\n", run("ep", "mine"))

	e.OK("build", "-t", "inherited", buildContext(t, "FROM busybox\nENTRYPOINT [\"echo\", \"only\"]\n", nil))
	assert.Equal(t, "only\n", run("inherited"), "busybox's CMD sh is not an argument to the new ENTRYPOINT")

	// The shell form: CMD and run's arguments only become the script's $0, $1...
	e.OK("build", "-t", "shellform", buildContext(t, "FROM busybox\nSHELL [\"/bin/sh\", \"-ec\"]\nENTRYPOINT echo shell form\nCMD [\"ignored\"]\n", nil))
	assert.Equal(t, "shell form\n", run("shellform"))
	assert.Equal(t, "shell form\n", run("shellform", "also", "ignored"))
	img, err := store.NewStore(e.Data).Get("shellform")
	require.NoError(t, err)
	assert.Equal(t, []string{"/bin/sh", "-ec", "echo shell form"}, img.Config.Config.Entrypoint)

	e.OK("build", "-t", "cmdshell", buildContext(t, "FROM busybox\nCMD echo from cmd\n", nil))
	assert.Equal(t, "from cmd\n", run("cmdshell"))
	assert.Equal(t, "replaced\n", run("cmdshell", "echo", "replaced"))
}

// A RUN that fails stops the build with docker's words and the command's
// exit code; nothing is tagged and nothing is left: no image, no container
// layer, no state.
func TestBuildRunFails(t *testing.T) {
	e := newRunEnv(t)
	e.importBusybox()
	r := e.Run("build", "-t", "broken", buildContext(t, "FROM busybox\nRUN echo before; exit 3\nRUN echo never\n", nil))
	assert.Equal(t, 3, r.Code, r.String())
	assert.Contains(t, r.Stdout, "before\n")
	assert.NotContains(t, r.Stdout, "never")
	assert.Equal(t, "08-image: The command '/bin/sh -c echo before; exit 3' returned a non-zero code: 3\n", r.Stderr)
	r = e.Run("build", buildContext(t, "FROM busybox\nRUN [\"false\"]\n", nil))
	assert.Equal(t, 1, r.Code, r.String())
	assert.Contains(t, r.Stderr, "The command 'false' returned a non-zero code: 1")

	assert.Len(t, strings.Fields(e.OK("images", "-a", "-q")), 1, "busybox only")
	assert.Empty(t, e.leftovers())
	r = e.Run("run", "--net", "none", "--rm", "--image", "broken", "true")
	assert.Equal(t, 125, r.Code)
}

// Ctrl-C during a RUN: the container is killed, the build stops with
// 130, and everything the step made is gone.
func TestBuildInterrupted(t *testing.T) {
	e := newRunEnv(t)
	e.importBusybox()
	cmd := exec.Command(e.Bin, "build", "-t", "stopped", buildContext(t, "FROM busybox\nRUN echo started; sleep 600\n", nil))
	cmd.Env = append(os.Environ(), e.Vars...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	id := waitForRunContainer(t, testenv.StateRoot(e.Vars))
	pid := testenv.ContainerPid(t, testenv.StateRoot(e.Vars), id)
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	err := cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "stdout:\n%s\nstderr:\n%s", out.String(), errb.String())
	assert.Equal(t, 130, ee.ExitCode())
	assert.Contains(t, errb.String(), "build interrupted")
	testenv.WaitGone(t, pid)
	assert.Empty(t, e.leftovers())
	assert.Len(t, strings.Fields(e.OK("images", "-a", "-q")), 1, "busybox only")
}

// A build SIGKILLed during a RUN leaves the container layer and its lock
// (its run and the container die with it); a lock file may also be left
// alone (killed before the layer was made). The next build removes both.
func TestBuildKilledIsCollected(t *testing.T) {
	e := newRunEnv(t)
	e.importBusybox()
	cmd := exec.Command(e.Bin, "build", buildContext(t, "FROM busybox\nRUN sleep 600\n", nil))
	cmd.Env = append(os.Environ(), e.Vars...)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	id := waitForRunContainer(t, testenv.StateRoot(e.Vars))
	pid := testenv.ContainerPid(t, testenv.StateRoot(e.Vars), id)
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	testenv.WaitGone(t, pid)
	alone := filepath.Join(e.Data, "images", "builds", "build-0123456789ab.lock")
	require.NoError(t, os.WriteFile(alone, nil, 0o600))
	left := e.leftovers()
	assert.Contains(t, left, filepath.Join(e.Data, "layers", "containers", id))
	assert.Contains(t, left, filepath.Join(e.Data, "images", "builds", id+".lock"))

	e.OK("build", buildContext(t, "FROM busybox\nENV A=1\n", nil))
	assert.Empty(t, e.leftovers())
}

// waitForRunContainer waits until a RUN container has a state directory.
func waitForRunContainer(t *testing.T, stateRoot string) string {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		entries, _ := os.ReadDir(stateRoot)
		for _, en := range entries {
			if strings.HasPrefix(en.Name(), "build-") {
				return en.Name()
			}
		}
	}
	t.Fatalf("no RUN container appeared in %s", stateRoot)
	return ""
}

// COPY reads the context only: "..", an absolute path and a symlink lead
// to files of the context, never outside it; a symlink in a copied
// directory is copied as the link. A destination through a symlink of the
// image stays in the image's root.
func TestBuildCopyStaysInside(t *testing.T) {
	e := newRunEnv(t)
	e.importBusybox()
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("host secret\n"), 0o644))
	ctx := buildContext(t, "", map[string]string{"dir/ok": "fine\n", "etc/hostname": "the context's own\n"})
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(ctx, "evil")))
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(ctx, "dir", "evil")))
	require.NoError(t, os.Symlink("../../../../../../.."+outside, filepath.Join(ctx, "updir")))
	build := func(dockerfile string) testenv.Result {
		require.NoError(t, os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(dockerfile), 0o644))
		return e.Run("build", "-t", "c", ctx)
	}
	for _, c := range []struct{ df, want string }{
		{"FROM busybox\nCOPY ../x /\n", "Dockerfile line 2: COPY ../x: forbidden path outside the build context"},
		{"FROM busybox\nCOPY dir/../../x /\n", "forbidden path outside the build context"},
		{"FROM busybox\nCOPY " + outside + "/secret /\n", "file not found in build context"},
		{"FROM busybox\nCOPY evil /\n", "COPY evil: file not found in build context or excluded by .dockerignore (a symlink leads only to a file of the build context)"},
		{"FROM busybox\nCOPY updir/secret /\n", "file not found in build context"},
		{"FROM busybox\nADD https://example.com/x /\n", "URLs are not supported"},
	} {
		r := build(c.df)
		assert.Equal(t, 1, r.Code, r.String())
		assert.Contains(t, r.Stderr, c.want)
	}
	// An absolute path names the context's own file.
	r := build("FROM busybox\nCOPY /etc/hostname /from-context\n")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, "the context's own\n", e.OK("run", "--net", "none", "--rm", "--image", "c", "cat", "/from-context"))

	// The link inside a directory is copied as a link; its target's content
	// is in no layer.
	r = build("FROM busybox\nCOPY dir /d\n")
	require.Equal(t, 0, r.Code, r.String())
	assert.Equal(t, filepath.Join(outside, "secret")+"\nfine\n",
		e.OK("run", "--net", "none", "--rm", "--image", "c", "sh", "-c", "readlink /d/evil; cat /d/ok; cat /d/evil 2>/dev/null || true"))
	grep := exec.Command("grep", "-rl", "host secret", filepath.Join(e.Data, "layers"))
	b, _ := grep.CombinedOutput()
	assert.Empty(t, string(b), "the secret reached a layer")

	// A symlink in the image that points out of it: COPY follows it inside
	// the image's root, as the container would, and writes nothing on the host.
	hostDir := filepath.Join(t.TempDir(), "must-stay-empty")
	require.NoError(t, os.Mkdir(hostDir, 0o755))
	r = build("FROM busybox\nRUN ln -s /../../../../.." + hostDir + " /escape\nCOPY dir/ok /escape/\n")
	require.Equal(t, 0, r.Code, r.String())
	entries, err := os.ReadDir(hostDir)
	require.NoError(t, err)
	assert.Empty(t, entries)
	assert.Equal(t, "fine\n", e.OK("run", "--net", "none", "--rm", "--image", "c", "cat", hostDir+"/ok"))
	assert.Empty(t, e.leftovers())
}

// ADD unpacks a local tarball (gzip'd or not); COPY copies it as a file;
// --chown sets the owner; .dockerignore keeps files out; wildcards.
func TestBuildAddCopyOptions(t *testing.T) {
	e := newRunEnv(t)
	e.importBusybox()
	ctx := buildContext(t, "", map[string]string{
		"src/a.txt": "a\n", "src/b.txt": "b\n", "src/c.log": "log\n", "src/sub/d.txt": "d\n",
		".dockerignore": "# comments too\n*.log\n**/*.log\nsecret*\n",
		"secret.key":    "never copied\n",
	})
	tarDir := writeTree(t, map[string]string{"inside/x": "from the tarball\n"})
	out, err := exec.Command("tar", "-C", tarDir, "-czf", filepath.Join(ctx, "arch.tgz"), "--owner=7", "--group=8", ".").CombinedOutput()
	require.NoError(t, err, string(out))
	df := `FROM busybox
ADD arch.tgz /unpacked/
COPY arch.tgz /copied/
COPY --chown=1234:5678 src/*.txt /txt/
COPY src /all/
COPY . /ctx/
`
	require.NoError(t, os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(df), 0o644))
	e.OK("build", "-t", "opts", ctx)
	got := e.OK("run", "--net", "none", "--rm", "--image", "opts", "sh", "-c",
		`cat /unpacked/inside/x; stat -c '%u:%g %n' /unpacked/inside/x /txt/a.txt; ls /copied /txt /all /all/sub; ls -a /ctx`)
	assert.Equal(t, `from the tarball
7:8 /unpacked/inside/x
1234:5678 /txt/a.txt
/all:
a.txt
b.txt
sub

/all/sub:
d.txt

/copied:
arch.tgz

/txt:
a.txt
b.txt
.
..
.dockerignore
Dockerfile
arch.tgz
src
`, got)

	r := e.Run("build", buildContext(t, "FROM busybox\nCOPY secret.key /\n", map[string]string{"secret.key": "x", ".dockerignore": "secret*"}))
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Stderr, "COPY secret.key: file not found in build context or excluded by .dockerignore")
	r = e.Run("build", buildContext(t, "FROM busybox\nCOPY a b /dest\n", map[string]string{"a": "", "b": ""}))
	assert.Contains(t, r.Stderr, "the destination must be a directory and end with a /")
}

// Stages: FROM ... AS name, COPY --from=name; ARG before FROM; the last
// stage is the image.
func TestBuildMultiStage(t *testing.T) {
	e := newRunEnv(t)
	e.importBusybox()
	df := `ARG BASE=busybox
FROM ${BASE} AS builder
ARG BASE
RUN mkdir /out && echo "built on $BASE" > /out/artifact
FROM scratch
COPY --from=builder /bin/busybox /bin/
COPY --from=builder /out/artifact /
ENTRYPOINT ["/bin/busybox"]
CMD ["cat", "/artifact"]
`
	out := e.OK("build", "-t", "small", buildContext(t, df, nil))
	assert.Contains(t, out, "Step 1/9 : ARG BASE=busybox")
	assert.Equal(t, "built on busybox\n", e.OK("run", "--net", "none", "--rm", "--image", "small"))
	assert.Equal(t, "busybox\n", e.OK("run", "--net", "none", "--rm", "--image", "small", "ls", "/bin"))
	hist := e.OK("history", "small")
	assert.Len(t, strings.Split(strings.TrimSpace(hist), "\n"), 5, hist) // the scratch stage's steps only

	r := e.Run("build", buildContext(t, "FROM busybox\nCOPY --from=nowhere /x /\n", nil))
	assert.Contains(t, r.Stderr, "--from=nowhere: no stage of that name above, and no such image in the store")
}

// Anything berth does not build gets one line naming it and its line.
func TestBuildRefusesWhatItDoesNotKnow(t *testing.T) {
	e := newRunEnv(t)
	e.importBusybox()
	for _, c := range []struct{ df, want string }{
		{"FROM busybox\n\nONBUILD RUN true\n", "08-image: Dockerfile line 3: ONBUILD is not supported by berth's builder (remove the line)\n"},
		{"FROM busybox\nFOO bar\n", "08-image: Dockerfile line 2: unknown instruction FOO\n"},
		{"FROM busybox\nCOPY --link a /\n", "08-image: Dockerfile line 2: COPY --link is not supported by berth's builder (it knows --chown, --from)\n"},
		{"FROM busybox\nRUN <<EOF\necho\nEOF\n", "08-image: Dockerfile line 2: RUN with a heredoc (<<EOF) is not supported by berth's builder: use a file of the context, or echo\n"},
		{"RUN true\n", "08-image: Dockerfile line 1: RUN before FROM: a Dockerfile starts with FROM (only ARG may come before it)\n"},
	} {
		r := e.Run("build", buildContext(t, c.df, nil))
		assert.Equal(t, 1, r.Code, r.String())
		assert.Contains(t, r.Stderr, c.want)
		assert.Empty(t, r.Stdout, "nothing ran: the Dockerfile is checked first")
	}
	r := e.Run("build", buildContext(t, "FROM nosuch\n", nil))
	assert.Equal(t, 1, r.Code, r.String())
	assert.Contains(t, r.Stderr, "08-image: Dockerfile line 1: FROM nosuch: no such image in the store")
	assert.Contains(t, r.Stderr, "pull, load or import it first (a build uses no network)")
	assert.Empty(t, e.leftovers())
}

// import --change sets the config with Dockerfile instructions.
func TestImportChange(t *testing.T) {
	e := newRunEnv(t)
	e.OK("import", "-c", `ENTRYPOINT ["/bin/sh", "-c"]`, "--change", `CMD ["echo $GREETING from $(pwd)"]`,
		"-c", "ENV GREETING=hi", "-c", "WORKDIR /tmp", "-c", "LABEL a=b", "-c", "EXPOSE 80", testenv.Rootfs(t), "changed")
	assert.Equal(t, "hi from /tmp\n", e.OK("run", "--net", "none", "--rm", "--image", "changed"))
	s := store.NewStore(e.Data)
	img, err := s.Get("changed")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"a": "b"}, img.Config.Config.Labels)
	assert.Contains(t, img.Config.Config.ExposedPorts, "80/tcp")
	r := e.Run("import", "-c", "RUN true", testenv.Rootfs(t), "x")
	assert.Equal(t, 125, r.Code)
	assert.Contains(t, r.Stderr, `--change "RUN true": RUN cannot change an image config`)
}

// .dockerignore with exceptions (!pattern): what is excluded stays out at
// every depth, the top of the context included; an excluded directory an
// exception reaches into holds only what the exception brings back, and
// is made only if something is. The Dockerfile and .dockerignore are
// copied unless excluded, as docker copies them.
func TestBuildDockerignoreExceptions(t *testing.T) {
	e := newRunEnv(t)
	e.importBusybox()
	ctx := buildContext(t, "FROM busybox\nCOPY . /app/\n", map[string]string{
		".dockerignore": "secret\n*.md\n!README.md\nnm\n!nm/absent\ndocs\n!docs/keep.txt\n",
		"secret":        "never copied\n",
		"x.md":          "excluded\n",
		"README.md":     "readme\n",
		"nm/x":          "excluded\n",
		"docs/keep.txt": "kept\n",
		"docs/drop.txt": "excluded\n",
		"sub/y.md":      "*.md is anchored at the top\n",
	})
	require.NoError(t, os.Chmod(filepath.Join(ctx, "docs"), 0o750))
	e.OK("build", "-t", "ign", ctx)
	assert.Equal(t, `/app
/app/.dockerignore
/app/Dockerfile
/app/README.md
/app/docs
/app/docs/keep.txt
/app/sub
/app/sub/y.md
750 /app/docs
`, e.OK("run", "--net", "none", "--rm", "--image", "ign", "sh", "-c", "find /app | sort; stat -c '%a %n' /app/docs"))
	grep := exec.Command("grep", "-rl", "-e", "never copied", "-e", "excluded", filepath.Join(e.Data, "layers"))
	b, _ := grep.CombinedOutput()
	assert.Empty(t, string(b), "an excluded file reached a layer")

	// Named as a source, an excluded directory gives what the exceptions
	// bring back; with nothing brought back, it is not there.
	require.NoError(t, os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM busybox\nCOPY docs /d/\n"), 0o644))
	e.OK("build", "-t", "ign", ctx)
	assert.Equal(t, "/d\n/d/keep.txt\n", e.OK("run", "--net", "none", "--rm", "--image", "ign", "find", "/d"))
	require.NoError(t, os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM busybox\nCOPY nm /n/\n"), 0o644))
	r := e.Run("build", ctx)
	assert.Equal(t, 1, r.Code, r.String())
	assert.Contains(t, r.Stderr, "COPY nm: file not found in build context or excluded by .dockerignore")
	assert.Empty(t, e.leftovers())
}

// The cache key is the step itself, not its history text: instructions
// whose created_by reads the same but that do something else each run.
func TestBuildCacheKeyIsTheStep(t *testing.T) {
	e := newRunEnv(t)
	busybox := e.importBusybox()
	build := func(df string) string {
		t.Helper()
		return e.OK("build", "-t", "k", buildContext(t, df, nil))
	}
	run := func(args ...string) string {
		t.Helper()
		return e.OK(append([]string{"run", "--net", "none", "--rm", "--image", "k"}, args...)...)
	}

	// A build of the old key scheme (parent id + created_by), and a file
	// that is no cache entry at all: both simply miss.
	first := build("FROM busybox\nENV A=\"x B=y\"\n")
	cache := filepath.Join(e.Data, "images", "buildcache")
	sum := sha256.Sum256([]byte(busybox + "\n/bin/sh -c #(nop)  ENV A=x B=y"))
	old := hex.EncodeToString(sum[:])
	require.NoError(t, os.WriteFile(filepath.Join(cache, old), []byte("sha256:"+builtIDFull(t, e, first)+"\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(cache, "junk"), []byte("not an id"), 0o600))

	out := build("FROM busybox\nENV A=x B=y\n")
	assert.NotContains(t, out, "Using cache")
	assert.Equal(t, "A=[x] B=[y]\n", run("sh", "-c", `echo "A=[$A] B=[$B]"`))

	build(`FROM busybox` + "\n" + `RUN ["/bin/sh", "-c", "echo", "hi", ">", "/f"]` + "\n")
	out = build("FROM busybox\nRUN echo hi > /f\n")
	assert.NotContains(t, out, "Using cache")
	assert.Equal(t, "hi\n", run("cat", "/f"))

	build("FROM busybox\nVOLUME [\"/a /b\"]\n")
	out = build("FROM busybox\nVOLUME /a /b\n")
	assert.NotContains(t, out, "Using cache")
	img, err := store.NewStore(e.Data).Get("k")
	require.NoError(t, err)
	assert.Equal(t, map[string]struct{}{"/a": {}, "/b": {}}, img.Config.Config.Volumes)

	// The same step again is cached; a cache file starts with the id of
	// the image it names.
	out = build("FROM busybox\nVOLUME /a /b\n")
	assert.Contains(t, out, "Using cache")
	entries, err := os.ReadDir(cache)
	require.NoError(t, err)
	s := store.NewStore(e.Data)
	found := 0
	for _, en := range entries {
		b, err := os.ReadFile(filepath.Join(cache, en.Name()))
		require.NoError(t, err)
		id, _, _ := strings.Cut(string(b), "\n")
		if en.Name() != "junk" && en.Name() != old {
			_, err := s.Get(id)
			assert.NoError(t, err, "%s: %q", en.Name(), b)
			found++
		}
	}
	assert.Equal(t, 6, found, "one entry per step built")
	assert.Empty(t, e.leftovers())
}

// builtIDFull is the full hex id of the image a build output names.
func builtIDFull(t *testing.T, e *runEnv, out string) string {
	t.Helper()
	img, err := store.NewStore(e.Data).Get(builtID(t, out))
	require.NoError(t, err)
	return img.ID().Encoded()
}
