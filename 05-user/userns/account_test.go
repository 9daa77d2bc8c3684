//go:build linux

package userns_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"berth/internal/testenv"
)

// An account is an unprivileged user the test creates and removes
// (testenv.Account), with a copy of the 05-user binary it can execute.
type account struct {
	*testenv.Account
	Bin string
}

func newAccount(t *testing.T, name string, withSubIDs bool) *account {
	t.Helper()
	a := testenv.NewAccount(t, name, withSubIDs)
	return &account{Account: a, Bin: a.Binary(t, "05-user")}
}

// berth runs the stage binary as the user.
func (a *account) berth(t *testing.T, env []string, args ...string) testenv.Result {
	t.Helper()
	return a.Run(t, env, a.Bin, args...)
}

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s\n%s", name, strings.Join(args, " "), out)
	return string(out)
}
