//go:build linux

package doccheck

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"berth/internal/testenv"
)

// These run blocks in a plain bash (no network namespace), so they need
// neither root nor anything but bash.
func parseOne(t *testing.T, src string) Block {
	t.Helper()
	bs, err := Parse("t.md", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 1 {
		t.Fatalf("got %d blocks", len(bs))
	}
	return bs[0]
}

func needBash(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("skipped: bash is not installed")
	}
}

func TestCheckPasses(t *testing.T) {
	needBash(t)
	b := parseOne(t, "```console run\n"+
		"$ echo hello; echo oops >&2\n"+
		"hello\n"+
		"oops\n"+
		"$ printf 'no newline'\n"+
		"no newline\n"+
		"$ sh -c 'exit 3'\n"+
		"$ echo $?\n"+
		"3\n"+
		"$ cd /; x=kept\n"+
		"$ pwd; echo $x\n"+
		"/\n"+
		"kept\n"+
		"$ printf '%s\\n' one \\\n"+
		"    two\n"+
		"one\n"+
		"two\n"+
		"$ sudo echo as root\n"+
		"as root\n"+
		"$ sudo GREETING=hi sh -c 'echo $GREETING'\n"+
		"hi\n"+
		"$ bash -c 'sudo echo inner'\n"+
		"inner\n"+
		"$ seq 5\n"+
		"1\n"+
		"…\n"+
		"5\n"+
		"$ echo \"pid $$\"\n"+
		"pid …\n"+
		"```\n")
	r := &Runner{Dir: t.TempDir()}
	if fails := r.Check(b); len(fails) > 0 {
		t.Errorf("a true block failed:\n%s", strings.Join(fails, "\n"))
	}
}

func TestCheckReportsMismatch(t *testing.T) {
	needBash(t)
	b := parseOne(t, "intro\n\n```console run\n"+
		"$ echo right\n"+
		"right\n"+
		"$ echo actual\n"+
		"expected\n"+
		"```\n")
	r := &Runner{Dir: t.TempDir()}
	fails := r.Check(b)
	if len(fails) != 1 {
		t.Fatalf("got %d failures, want 1:\n%s", len(fails), strings.Join(fails, "\n"))
	}
	for _, want := range []string{"t.md:6: $ echo actual", "- 7 | expected", "+   | actual"} {
		if !strings.Contains(fails[0], want) {
			t.Errorf("failure does not contain %q:\n%s", want, fails[0])
		}
	}
}

func TestCheckShellEndsEarly(t *testing.T) {
	needBash(t)
	b := parseOne(t, "```console run\n$ echo bye; exit 4\nbye\n$ echo never\nnever\n```\n")
	fails := (&Runner{Dir: t.TempDir()}).Check(b)
	all := strings.Join(fails, "\n")
	if !strings.Contains(all, "t.md:4: $ echo never\nnot run") {
		t.Errorf("the command after exit was not reported as not run:\n%s", all)
	}
}

func TestCheckLeftover(t *testing.T) {
	needBash(t)
	b := parseOne(t, "```console run\n$ sleep 600 >/dev/null 2>&1 &\n```\n")
	fails := (&Runner{Dir: t.TempDir(), Linger: 200 * time.Millisecond}).Check(b)
	all := strings.Join(fails, "\n")
	if !strings.Contains(all, "left processes running") || !strings.Contains(all, "sleep 600") {
		t.Errorf("a background sleep was not reported:\n%s", all)
	}
}

func TestCheckTimeout(t *testing.T) {
	needBash(t)
	b := parseOne(t, "```console run\n$ sleep 600\n```\n")
	fails := (&Runner{Dir: t.TempDir(), Timeout: 300 * time.Millisecond, Linger: 200 * time.Millisecond}).Check(b)
	if all := strings.Join(fails, "\n"); !strings.Contains(all, "still running after") {
		t.Errorf("timeout not reported:\n%s", all)
	}
}

// The chapters' runner puts each block in a network namespace of its own
// with only lo, up; sudo -u really changes user.
func TestChapterRunnerNetwork(t *testing.T) {
	testenv.RequireRoot(t)
	needBash(t)
	b := parseOne(t, "```console run\n"+
		"$ ip -o link show | cut -d' ' -f2,3\n"+
		"lo: <LOOPBACK,UP,LOWER_UP>\n"+
		"$ [ \"$(readlink /proc/self/ns/net)\" != \"$HOST_NET\" ] && echo own netns\n"+
		"own netns\n"+
		"$ pwd\n"+
		"/\n"+
		"$ sudo -u nobody id -un\n"+
		"nobody\n"+
		"```\n")
	host, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	r := ChapterRunner("/")
	r.Env = []string{"HOST_NET=" + host}
	if fails := r.Check(b); len(fails) > 0 {
		t.Errorf("%s", strings.Join(fails, "\n"))
	}
}
