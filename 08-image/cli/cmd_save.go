//go:build linux

package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"berth/08-image/archive"
)

func saveCommand() *cobra.Command {
	var (
		output, format string
	)
	cmd := &cobra.Command{
		Use:   "save [-o FILE] IMAGE...",
		Short: "Write images to a tar archive that docker load and OCI tools read (to stdout unless -o)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != archive.SaveDocker && format != archive.SaveOCI {
				return fmt.Errorf("--format %q: use %s (OCI layout and docker's manifest.json) or %s (the OCI layout alone)", format, archive.SaveDocker, archive.SaveOCI)
			}
			s, err := storeOf(cmd)
			if err != nil {
				return err
			}
			items, err := archive.SaveItems(s, args)
			if err != nil {
				return err
			}
			save := func(w io.Writer) error { return archive.Save(cmd.Context(), s, w, items, format) }
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
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to FILE instead of stdout")
	cmd.Flags().StringVar(&format, "format", archive.SaveDocker, "docker: an OCI layout with docker's manifest.json beside it, as docker save writes since 25; oci: the OCI layout alone")
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
	// Errors name the file asked for, not the temporary one beside it.
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".")
	if err != nil {
		return fmt.Errorf("save: create %s: %w", p, pathError(err))
	}
	defer os.Remove(tmp.Name()) // gone after the rename, or on any error

	// A damaged store's errors keep their words; a failed write names p.
	err = write(&outFile{tmp, p})
	if err == nil {
		err = tmp.Chmod(0o644)
		if err == nil {
			err = tmp.Sync()
		}
		if err != nil {
			err = fmt.Errorf("save: write %s: %w", p, pathError(err))
		}
	}
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("save: write %s: %w", p, pathError(cerr))
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("save: rename to %s: %w", p, pathError(err))
	}
	return nil
}

// outFile is the temporary file, whose write errors name the output.
type outFile struct {
	f    *os.File
	name string
}

func (o *outFile) Write(b []byte) (int, error) {
	n, err := o.f.Write(b)
	if err != nil {
		err = fmt.Errorf("save: write %s: %w", o.name, pathError(err))
	}
	return n, err
}

// pathError is the bare reason of an error on the temporary file
// ("no such file or directory"), without its name.
func pathError(err error) error {
	var pe *os.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Err
	case errors.As(err, &le):
		return le.Err
	}
	return err
}
