//go:build linux

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/distribution/reference"
	"github.com/spf13/cobra"

	"berth/01-uts/spine"
	"berth/08-image/image"
	"berth/08-image/registry"
	"berth/08-image/store"
)

// registryFlags are the flags pull and push share: which registries get
// plain http, and credentials.
type registryFlags struct {
	insecure []string
	creds    string
}

func (f *registryFlags) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.insecure, "insecure-registry", nil, "speak plain http to this registry (HOST[:PORT] or a CIDR; repeatable; also $BERTH_INSECURE_REGISTRIES, comma-separated); loopback always is")
	cmd.Flags().StringVar(&f.creds, "creds", "", "USER:PASSWORD for a registry that asks for them (default $BERTH_REGISTRY_CREDS, else the login stored by berth login or docker login)")
}

// client is a registry client with the flags' registries and
// credentials: --creds, else $BERTH_REGISTRY_CREDS, else the login that
// docker login or berth login stored for the registry of ref (Docker's
// config.json: registry.AuthFilePath), through the credential helper it
// names for the registry if it names one (registry.AuthFile.Lookup).
func (f *registryFlags) client(ref string) (*registry.Client, error) {
	c := &registry.Client{Insecure: append([]string(nil), f.insecure...)}
	env := strings.FieldsFunc(os.Getenv("BERTH_INSECURE_REGISTRIES"), func(r rune) bool { return r == ',' || r == ' ' })
	c.Insecure = append(c.Insecure, env...)
	creds := f.creds
	if creds == "" {
		creds = os.Getenv("BERTH_REGISTRY_CREDS")
	}
	if creds != "" {
		var ok bool
		if c.Username, c.Password, ok = strings.Cut(creds, ":"); !ok || c.Username == "" {
			return nil, errors.New("--creds (or $BERTH_REGISTRY_CREDS) is USER:PASSWORD")
		}
		return c, nil
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return c, nil // the transfer itself says what is wrong with the name
	}
	path, err := registry.AuthFilePath()
	if err != nil {
		return c, nil // no home: no stored login
	}
	file, err := registry.LoadAuthFile(path)
	if err != nil {
		return nil, err
	}
	if c.Username, c.Password, _, err = file.Lookup(reference.Domain(named)); err != nil {
		return nil, err
	}
	return c, nil
}

// Pull fetches ref into s as pull does without flags, its progress on
// out: $BERTH_INSECURE_REGISTRIES, $BERTH_REGISTRY_CREDS, else the login
// config.json holds for the registry (registryFlags.client). A build's
// FROM and stage 09's run and create of an image the store lacks use it.
func Pull(ctx context.Context, s *store.Store, ref string, out io.Writer) (*store.Image, error) {
	var reg registryFlags
	c, err := reg.client(ref)
	if err != nil {
		return nil, err
	}
	p, err := registry.Pull(ctx, s, c, ref, registry.PullOptions{Out: out})
	if err != nil {
		return nil, err
	}
	return p.Image, nil
}

// interruptible ends the context on Ctrl-C or SIGTERM, so that a transfer
// stops and its half-written blob is removed.
func interruptible(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return spine.NotifyInterrupt(cmd.Context())
}

func pullCommand() *cobra.Command {
	var (
		reg      registryFlags
		bound    image.SizeFlag
		platform string
	)
	cmd := &cobra.Command{
		Use:   "pull NAME[:TAG|@DIGEST]",
		Short: "Fetch an image from a registry (Docker Hub for a bare name such as busybox)",
		Long: `Fetch an image from a registry (Docker Hub for a bare name such as busybox):
its manifest, its config and each layer, every blob checked against the
digest that names it, every layer read whole as a tar whose content is the
config's diff id, the layers' files within --max-image-size; then the
layers are unpacked and the name is set.

What a pulled image is not: contained. Until stage 09 adds its security
defaults, a container of stages 01-08 keeps every capability of the user
who starts it, has no seccomp filter and a writable /proc/sys. Started with
sudo, it is root on the host, and so is the image's code: run only an image
you would run as root on this machine yourself.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := storeOf(cmd)
			if err != nil {
				return err
			}
			s.MaxImageSize = bound.N
			var o registry.PullOptions
			if platform != "" {
				if o.Platform, err = registry.ParsePlatform(platform); err != nil {
					return err
				}
			}
			o.Out = cmd.OutOrStdout()
			if r, err := reference.ParseNormalizedNamed(args[0]); err == nil && reference.IsNameOnly(r) {
				fmt.Fprintln(o.Out, "Using default tag: latest")
			}
			ctx, stop := interruptible(cmd)
			defer stop()
			c, err := reg.client(args[0])
			if err != nil {
				return err
			}
			p, err := registry.Pull(ctx, s, c, args[0], o)
			if err != nil {
				return err
			}
			fmt.Fprintln(o.Out, p.Image.Name) // docker pull's last line, the full name
			return nil
		},
	}
	reg.addFlags(cmd)
	bound.AddFlag(cmd.Flags())
	cmd.Flags().StringVar(&platform, "platform", "", "OS/ARCH[/VARIANT] to take from a multi-platform image (default "+registry.PlatformString(registry.HostPlatform())+")")
	return cmd
}
