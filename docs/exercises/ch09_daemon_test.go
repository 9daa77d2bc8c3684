//go:build exercise && linux

package exercises

import (
	"context"
	"io"
	gonet "net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// daemonAPI starts berth daemon of this checkout on a private socket and
// roots, with the busybox tree as the image busybox, and returns a
// function that makes one request: its status and body.
func daemonAPI(t *testing.T) func(method, path, body string) (int, []byte) {
	t.Helper()
	testenv.RequireRoot(t)
	berth := testenv.Berth(t)
	env := testenv.StateEnv(t)
	r := testenv.Run(t, env, berth, "import", "--cmd", "sh", testenv.Rootfs(t), "busybox")
	require.Equal(t, 0, r.Code, "%s", r)
	sock := filepath.Join(t.TempDir(), "docker.sock")
	testenv.Start(t, env, berth, "daemon", "-H", "unix://"+sock)
	c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (gonet.Conn, error) {
		return (&gonet.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	call := func(method, path, body string) (int, []byte) {
		req, err := http.NewRequest(method, "http://berth/v1.44"+path, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := c.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if conn, err := gonet.Dial("unix", sock); err == nil {
			conn.Close()
			break
		}
		require.True(t, time.Now().Before(deadline), "berth daemon does not answer on %s", sock)
	}
	t.Cleanup(func() { testenv.Run(t, env, berth, "rm", "-f", "ex29", "ex30") })
	return call
}

func TestExercise09_29(t *testing.T) {
	a := answer(t, "09-29", 3)
	call := daemonAPI(t)
	code, b := call("POST", "/containers/create?name=ex29", `{"Image":"busybox","Cmd":["sh","-c","echo hello; echo oops! >&2"],"HostConfig":{"NetworkMode":"none"}}`)
	require.Equal(t, 201, code, "%s", b)
	code, b = call("POST", "/containers/ex29/start", "")
	require.Equal(t, 204, code, "%s", b)
	code, b = call("POST", "/containers/ex29/wait", "")
	require.Equal(t, 200, code, "%s", b)
	code, b = call("GET", "/containers/ex29/logs?stdout=1&stderr=1", "")
	require.Equal(t, 200, code, "%s", b)
	require.Greater(t, len(b), 8, "%q", b)
	assert.True(t, same(a[0], strconv.Itoa(int(b[0]))), "line 1: the first byte is %d (the stream: 1 stdout, 2 stderr), not %q", b[0], a[0])
	assert.True(t, same(a[1], strconv.Itoa(int(b[7]))), "line 2: the eighth byte is %d (the low byte of the length), not %q", b[7], a[1])
	assert.True(t, same(a[2], strconv.Itoa(len(b))), "line 3: the answer has %d bytes (two headers of 8, and the lines), not %q", len(b), a[2])
}

func TestExercise09_30(t *testing.T) {
	a := answer(t, "09-30", 2)
	call := daemonAPI(t)
	code, b := call("POST", "/containers/create?name=ex30", `{"Image":"busybox","Cmd":["sleep","100"],"HostConfig":{"NetworkMode":"none"}}`)
	require.Equal(t, 201, code, "%s", b)
	code, b = call("POST", "/containers/ex30/start", "")
	require.Equal(t, 204, code, "%s", b)
	again, _ := call("POST", "/containers/ex30/start", "")
	del, _ := call("DELETE", "/containers/ex30", "")
	assert.True(t, same(a[0], strconv.Itoa(again)), "line 1: start of a running container answers %d, not %q", again, a[0])
	assert.True(t, same(a[1], strconv.Itoa(del)), "line 2: DELETE of a running container without force answers %d, not %q", del, a[1])
}
