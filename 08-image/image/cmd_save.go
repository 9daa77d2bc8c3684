//go:build linux

package image

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func init() { verbs = append(verbs, saveCommand) }

func saveCommand() *cobra.Command {
	var (
		roots          dataRoot
		output, format string
	)
	cmd := &cobra.Command{
		Use:   "save [-o FILE] IMAGE...",
		Short: "Write images to a tar archive that docker load and OCI tools read (to stdout unless -o)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != SaveDocker && format != SaveOCI {
				return fmt.Errorf("--format %q: use %s (OCI layout and docker's manifest.json) or %s (the OCI layout alone)", format, SaveDocker, SaveOCI)
			}
			s, err := roots.store()
			if err != nil {
				return err
			}
			items, err := s.SaveItems(args)
			if err != nil {
				return err
			}
			save := func(w io.Writer) error { return s.Save(w, items, format) }
			if output == "" || output == "-" {
				out := cmd.OutOrStdout()
				if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
					return errors.New("refusing to write a tar archive to a terminal: give -o FILE, or redirect stdout")
				}
				return save(out)
			}
			return writeOutput(output, save)
		},
	}
	roots.addFlag(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to FILE instead of stdout")
	cmd.Flags().StringVar(&format, "format", SaveDocker, "docker: an OCI layout with docker's manifest.json beside it, as docker save writes since 25; oci: the OCI layout alone")
	return cmd
}

// writeOutput writes a file that appears whole or not at all: a failed
// save leaves no half archive under the name. A device or a pipe (-o
// /dev/stdout) is written as it is.
func writeOutput(p string, write func(io.Writer) error) error {
	if st, err := os.Stat(p); err == nil && !st.Mode().IsRegular() {
		if st.IsDir() {
			return fmt.Errorf("-o %s is a directory: give a file name", p)
		}
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		if term.IsTerminal(int(f.Fd())) {
			f.Close()
			return fmt.Errorf("refusing to write a tar archive to the terminal %s", p)
		}
		if err := write(f); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".")
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	defer os.Remove(tmp.Name()) // gone after the rename, or on any error
	err = write(tmp)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}
