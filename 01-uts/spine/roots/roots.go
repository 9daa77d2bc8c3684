// Package roots says where berth keeps things: the state root, live
// containers (--root, $BERTH_ROOT, as runc names it), and the data root,
// what outlives them: images, layers, the busybox tree (--data-root,
// $BERTH_DATA_ROOT). Every verb of every stage asks here, through the
// global flags of its root command (chapter 05 explains the rootless
// defaults).
package roots

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
)

// A flag wins over the environment, the environment over the default. The
// default is root's (DefaultState, DefaultDataRoot) or, without root,
// where podman keeps a rootless user's files (stage 05): live state under
// $XDG_RUNTIME_DIR/berth, a per-user tmpfs that systemd removes at logout,
// and data under ~/.local/share/berth.

// Root's defaults; flags and environment override them.
const (
	DefaultDataRoot = "/var/lib/berth" // images, layers, the busybox rootfs (--data-root, $BERTH_DATA_ROOT)
	DefaultState    = "/run/berth"     // live containers (--root, $BERTH_ROOT; runc calls it --root too)
)

// root is one of the two: its flag, its variable, its defaults.
type root struct {
	flag, env, def, what string
	rootless             func() (string, error)
}

var (
	stateRoot = root{"root", "BERTH_ROOT", DefaultState, "state root", RootlessStateRoot}
	dataRoot  = root{"data-root", "BERTH_DATA_ROOT", DefaultDataRoot, "data root", RootlessDataRoot}
)

// AddGlobalFlags gives a root command the flags every verb takes: --root,
// --data-root, --debug (spine.Main does; a program with a command line
// of its own, stage 09, calls it on its root command too).
func AddGlobalFlags(fs *pflag.FlagSet) {
	fs.String(stateRoot.flag, "", "directory of live container state (default $BERTH_ROOT, or "+DefaultState+" for root and $XDG_RUNTIME_DIR/berth without)")
	fs.String(dataRoot.flag, "", "directory of persistent data: images, layers, the busybox tree (default $BERTH_DATA_ROOT, or "+DefaultDataRoot+" for root and ~/.local/share/berth without)")
	fs.Bool("debug", false, "say what berth does, as run's --verbose, on every verb")
}

// StateRootOf is the state root a verb was given: its --root, else as
// StateRoot decides.
func StateRootOf(cmd *cobra.Command) (string, error) {
	return stateRoot.of(flagValue(cmd, stateRoot.flag))
}

// DataRootOf is the data root a verb was given: its --data-root, else as
// DataRoot decides.
func DataRootOf(cmd *cobra.Command) (string, error) {
	return dataRoot.of(flagValue(cmd, dataRoot.flag))
}

// DebugOf reports whether a verb was given --debug.
func DebugOf(cmd *cobra.Command) bool { return flagValue(cmd, "debug") == "true" }

func flagValue(cmd *cobra.Command, name string) string {
	if f := cmd.Flag(name); f != nil {
		return f.Value.String()
	}
	return ""
}

// StateRoot is the directory of live state: flag if not empty, else
// $BERTH_ROOT, else DefaultState for root and RootlessStateRoot without.
func StateRoot(flag string) (string, error) { return stateRoot.of(flag) }

// DataRoot is the directory of persistent data: flag if not empty, else
// $BERTH_DATA_ROOT, else DefaultDataRoot for root and RootlessDataRoot
// without.
func DataRoot(flag string) (string, error) { return dataRoot.of(flag) }

func (r root) of(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if os.Geteuid() != 0 && os.Getenv(r.env) == "" {
		return r.rootless()
	}
	return r.envOrDefault(), nil
}

// StateEnvOrDefault and DataEnvOrDefault are the roots without a flag and
// as root: the variable, else the default. spine.NewContainer starts with
// them, before a command line decides.
func StateEnvOrDefault() string { return stateRoot.envOrDefault() }

// DataEnvOrDefault: see StateEnvOrDefault.
func DataEnvOrDefault() string { return dataRoot.envOrDefault() }

func (r root) envOrDefault() string {
	if v := os.Getenv(r.env); v != "" {
		return v
	}
	return r.def
}

// RootlessStateRoot is where a user without root keeps live state:
// $XDG_RUNTIME_DIR/berth.
func RootlessStateRoot() (string, error) {
	dir, err := runtimeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "berth"), nil
}

// RootlessDataRoot is where a user without root keeps data (07's layers,
// 08's images): ~/.local/share/berth.
func RootlessDataRoot() (string, error) {
	dir, err := dataHome()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "berth"), nil
}

// runtimeDir is $XDG_RUNTIME_DIR, or /run/user/UID, or a private
// directory in /tmp when the session has neither (su, runuser, cron).
func runtimeDir() (string, error) {
	uid := os.Getuid()
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return d, ownDir(d, uid, false)
	}
	if d := fmt.Sprintf("/run/user/%d", uid); ownDir(d, uid, false) == nil {
		return d, nil
	}
	d := filepath.Join(os.TempDir(), "berth-run-"+strconv.Itoa(uid))
	return d, ownDir(d, uid, true)
}

// ownDir checks that d is a real directory of ours that nobody else may
// write: state files there are trusted by the next run's cleanup. With
// create it makes d first (0700), as a shared /tmp needs.
func ownDir(d string, uid int, create bool) error {
	if create {
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create runtime directory %s: %w", d, err)
		}
	}
	var st unix.Stat_t
	if err := unix.Lstat(d, &st); err != nil {
		return fmt.Errorf("runtime directory %s: %w", d, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != uid || st.Mode&0o022 != 0 {
		return fmt.Errorf("runtime directory %s is not a directory of uid %d that only it may write: set XDG_RUNTIME_DIR or --root", d, uid)
	}
	return nil
}

// dataHome is $XDG_DATA_HOME or ~/.local/share.
func dataHome() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return d, nil
	}
	home := os.Getenv("HOME")
	if home == "" {
		u, err := user.Current()
		if err != nil {
			return "", fmt.Errorf("find your home directory (set HOME or --data-root): %w", err)
		}
		home = u.HomeDir
	}
	return filepath.Join(home, ".local", "share"), nil
}

// ReadOnly turns a write that a read-only filesystem refused, under the
// data root or the state root, into the line the user needs: which of
// berth's directories it is, and how to give another. The error itself
// names the file berth uses inside (a lock file, a store's index), and
// often twice ("open X: open X: read-only file system").
func ReadOnly(err error, cmd *cobra.Command) error {
	var pe *fs.PathError
	if !errors.Is(err, unix.EROFS) || !errors.As(err, &pe) {
		return err
	}
	for _, r := range []root{dataRoot, stateRoot} {
		dir, err := r.of(flagValue(cmd, r.flag))
		if err != nil || dir == "" {
			continue
		}
		if abs, aerr := filepath.Abs(dir); aerr == nil && (pe.Path == abs || strings.HasPrefix(pe.Path, abs+"/") || strings.HasPrefix(abs, pe.Path+"/")) {
			return fmt.Errorf("the %s %s is on a read-only filesystem: give a writable one with --%s DIR (or $%s)", r.what, abs, r.flag, r.env)
		}
	}
	return fmt.Errorf("%s: %w", pe.Path, unix.EROFS)
}
