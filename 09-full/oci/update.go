//go:build linux

package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
)

// maxResources bounds an update's resources document.
const maxResources = 1 << 20

// updateCmd is runc's update with the spec's linux.resources as JSON (a
// file, or - for stdin: containerd's shim pipes it), applied to the
// container's cgroup as `berth update` does (cgroup.Group.Update). runc's
// per-resource flags (--memory, --cpu-quota...) are not offered: cobra
// refuses an unknown flag in one line.
func updateCmd() *cobra.Command {
	var resources string
	cmd := &cobra.Command{
		Use:   "update --resources R.json|- ID",
		Short: "change the resources (cgroup limits) of a running container",
		Args:  exactArgs(1, "ID"),
		RunE: func(_ *cobra.Command, args []string) error {
			if resources == "" {
				return errors.New("update: give --resources FILE (or - for stdin)")
			}
			var r io.Reader = os.Stdin
			if resources != "-" {
				f, err := os.Open(resources)
				if err != nil {
					return fmt.Errorf("update --resources: %w", err)
				}
				defer f.Close()
				r = f
			}
			b, err := io.ReadAll(io.LimitReader(r, maxResources+1))
			if err != nil {
				return fmt.Errorf("update --resources: %w", err)
			}
			if len(b) > maxResources {
				return fmt.Errorf("update --resources: larger than %d bytes", maxResources)
			}
			var res specs.LinuxResources
			if err := json.Unmarshal(b, &res); err != nil {
				return fmt.Errorf("update --resources %s: %w", resources, err)
			}
			x, err := load(args[0])
			if err != nil {
				return err
			}
			if x.status == Stopped {
				return fmt.Errorf("container %s is not running", x.id)
			}
			g, err := x.group()
			if err != nil {
				return err
			}
			return g.Update(&res)
		},
	}
	cmd.Flags().StringVarP(&resources, "resources", "r", "", "the spec's linux.resources as JSON (- reads stdin)")
	return cmd
}
