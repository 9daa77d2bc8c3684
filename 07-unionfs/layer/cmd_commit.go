//go:build linux

package layer

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

func commitCommand() *cobra.Command {
	var r roots
	cmd := &cobra.Command{
		Use:   "commit ID OUT.tar",
		Short: "Write a container's layer as an OCI layer tarball ('-' for stdout)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, out := args[0], args[1]
			store, err := r.store()
			if err != nil {
				return err
			}
			if done, err := store.unshare(id, "commit", id, out); done {
				return err
			}
			if out == "-" {
				_, err := store.Commit(id, cmd.OutOrStdout())
				return err
			}
			// Written beside OUT and renamed: a failed commit leaves no
			// truncated tarball that looks like a layer.
			tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".")
			if err != nil {
				return err
			}
			defer os.Remove(tmp.Name())
			if _, err := store.Commit(id, tmp); err != nil {
				tmp.Close()
				return err
			}
			if err := tmp.Close(); err != nil {
				return err
			}
			if err := os.Chmod(tmp.Name(), 0o644); err != nil {
				return err
			}
			if err := os.Rename(tmp.Name(), out); err != nil {
				return fmt.Errorf("commit: %w", err)
			}
			return nil
		},
	}
	r.addFlags(cmd)
	return cmd
}
