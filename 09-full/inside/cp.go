//go:build linux

package inside

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"berth/09-full/cp"
	"berth/09-full/store"

	"berth/09-full/clikit"
)

// cpCommand is `berth cp CONTAINER:SRC DEST` and `berth cp SRC
// CONTAINER:DEST`, for a running container, through package cp's
// handles.
func (a *app) cpCommand() *cobra.Command {
	var archive bool
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH\n  berth cp [OPTIONS] SRC_PATH CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcRef, srcPath, srcIn := splitCp(args[0])
			dstRef, dstPath, dstIn := splitCp(args[1])
			switch {
			case srcIn && dstIn:
				return clikit.Usage("copying between containers is not supported")
			case !srcIn && !dstIn:
				return clikit.Usage("must specify at least one container source")
			case srcPath == "-":
				return clikit.Usage("berth cp: a tar stream into a container (-) is not supported yet: name a file or directory")
			}
			ref := srcRef
			if dstIn {
				ref = dstRef
			}
			e, err := a.Engine()
			if err != nil {
				return err
			}
			rec, err := e.Store.Get(ref)
			if err != nil {
				return err
			}
			st, err := e.Store.View(rec.ID)
			if err != nil {
				return err
			}
			if st.Status != store.Running && st.Status != store.Paused {
				return fmt.Errorf("container %s is not running: berth cp copies into and out of running containers (start it first)", rec.ID[:12])
			}
			root, err := cp.OpenRoot(st.Pid, rec.Spec)
			if err != nil {
				return err
			}
			defer root.Close()
			root.Warn = func(format string, args ...any) { fmt.Fprintf(a.Stderr, "berth: "+format+"\n", args...) }
			if srcIn && dstPath == "-" {
				return root.CopyOutTar(srcPath, a.Stdout)
			}
			if srcIn {
				return root.CopyOut(srcPath, dstPath)
			}
			return root.CopyIn(srcPath, dstPath, archive)
		},
	}
	cmd.Flags().BoolVarP(&archive, "archive", "a", false, "archive mode (copy all uid/gid information)")
	return cmd
}

// splitCp reads CONTAINER:PATH; a path with a "/" before any ":" (./a:b)
// is a local path, as docker reads it.
func splitCp(arg string) (ref, p string, inContainer bool) {
	i := strings.Index(arg, ":")
	if i <= 0 || strings.Contains(arg[:i], "/") {
		return "", arg, false
	}
	return arg[:i], arg[i+1:], true
}
