//go:build linux

package layer

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"berth/07-unionfs/untar"
)

func applyCommand() *cobra.Command {
	var (
		maxSize string
		devices string
		opt     untar.Options
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "apply LAYER.tar DIR",
		Short: "Extract a layer tarball safely into a new layer directory (OCI whiteouts become overlay's)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseSize(maxSize)
			if err != nil {
				return fmt.Errorf("invalid --max-size %q: %w", maxSize, err)
			}
			opt.MaxBytes = n
			switch untar.DevicePolicy(devices) {
			case untar.DevicesRefuse, untar.DevicesSkip, untar.DevicesCreate:
				opt.Devices = untar.DevicePolicy(devices)
			default:
				return fmt.Errorf("invalid --devices %q: use refuse, skip or create", devices)
			}
			st, err := untar.ApplyFile(args[0], args[1], opt)
			if err != nil {
				return err
			}
			if verbose {
				fmt.Fprintf(cmd.ErrOrStderr(), "applied %d entries, %d bytes, %d whiteouts, %d opaque dirs; skipped %d overlay xattrs, %d devices\n",
					st.Entries, st.Bytes, st.Whiteouts, st.Opaque, st.SkippedXattrs, st.SkippedDevices)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&maxSize, "max-size", "8G", "refuse a layer whose files add up to more than this (K, M, G suffixes)")
	fs.StringVar(&devices, "devices", string(untar.DevicesRefuse), "device nodes in the layer: refuse, skip or create")
	fs.BoolVar(&opt.NoSetuid, "no-setuid", false, "clear setuid and setgid bits")
	fs.BoolVar(&opt.Userxattr, "userxattr", false, "mark opaque directories with user.overlay.opaque (for a rootless overlay)")
	fs.BoolVarP(&verbose, "verbose", "v", false, "print what was applied")
	return cmd
}

// parseSize reads 100, 64K, 100M, 8G (powers of 1024).
func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("want a positive size such as 512M")
	}
	return n * mult, nil
}
