//go:build linux

package imageverbs

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"berth/01-uts/spine"
	"berth/08-image/registry"

	"berth/09-full/clikit"
)

// loginCommand is docker login: check a user name and password against a
// registry, then keep them in Docker's config.json (08-image/registry/
// authfile.go), where pull and push find them. The password comes from
// stdin (--password-stdin) or a prompt that does not echo it, so that it
// need not be on a command line, which every user of the machine may read
// in /proc/PID/cmdline.
func (a *app) loginCommand() *cobra.Command {
	var (
		user, password string
		passwordStdin  bool
		insecure       []string
	)
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Log in to a registry (Docker Hub without SERVER); the login is kept in Docker's config.json",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := registryOf(args)
			if password != "" {
				fmt.Fprintln(a.Stderr, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
				if passwordStdin {
					return clikit.Usage("--password and --password-stdin are mutually exclusive")
				}
			}
			in := bufio.NewReader(os.Stdin)
			if passwordStdin {
				if user == "" {
					return clikit.Usage("Must provide --username with --password-stdin")
				}
				b, err := io.ReadAll(io.LimitReader(in, 64<<10))
				if err != nil {
					return fmt.Errorf("read the password from stdin: %w", err)
				}
				password = strings.TrimRight(string(b), "\r\n")
			}
			if user == "" {
				fmt.Fprintf(a.Stdout, "Username: ")
				line, _ := in.ReadString('\n')
				user = strings.TrimSpace(line)
			}
			if password == "" && !passwordStdin {
				if !term.IsTerminal(int(os.Stdin.Fd())) {
					return clikit.Usage("no password: give it on a terminal, or with --password-stdin")
				}
				fmt.Fprintf(a.Stdout, "Password: ")
				b, err := term.ReadPassword(int(os.Stdin.Fd()))
				fmt.Fprintln(a.Stdout)
				if err != nil {
					return fmt.Errorf("read the password: %w", err)
				}
				password = string(b)
			}
			if user == "" || password == "" {
				return clikit.Usage("login needs a user name and a password")
			}
			c := &registry.Client{Username: user, Password: password, Insecure: insecureOf(insecure)}
			ctx, stop := spine.NotifyInterrupt(cmd.Context())
			defer stop()
			if err := c.Login(ctx, server); err != nil {
				return fmt.Errorf("login to %s: %w", server, err)
			}
			path, err := registry.AuthFilePath()
			if err != nil {
				return err
			}
			file, err := registry.LoadAuthFile(path)
			if err != nil {
				return err
			}
			// Through the credential helper config.json names, if any;
			// else in the clear in config.json, with docker's warning.
			helper, err := file.Store(server, user, password)
			if err != nil {
				return err
			}
			if err := file.Save(); err != nil {
				return err
			}
			if helper == "" {
				fmt.Fprintf(a.Stderr, "WARNING! Your password will be stored unencrypted in %s.\n", path)
			}
			fmt.Fprintln(a.Stdout, "Login Succeeded")
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&user, "username", "u", "", "user name")
	fs.StringVarP(&password, "password", "p", "", "password (insecure: every user can read a command line; use --password-stdin)")
	fs.BoolVar(&passwordStdin, "password-stdin", false, "take the password from stdin")
	fs.StringArrayVar(&insecure, "insecure-registry", nil, "speak plain http to this registry (as pull's; loopback always is)")
	return cmd
}

// logoutCommand is docker logout: forget a registry's login.
func (a *app) logoutCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry (Docker Hub without SERVER)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := registryOf(args)
			path, err := registry.AuthFilePath()
			if err != nil {
				return err
			}
			file, err := registry.LoadAuthFile(path)
			if err != nil {
				return err
			}
			had, err := file.Erase(server) // in its credential helper too
			if err != nil {
				return err
			}
			if !had {
				fmt.Fprintf(a.Stdout, "Not logged in to %s\n", registry.AuthKey(server))
				return nil
			}
			if err := file.Save(); err != nil {
				return err
			}
			fmt.Fprintf(a.Stdout, "Removing login credentials for %s\n", registry.AuthKey(server))
			return nil
		},
	}
}

// registryOf is login's SERVER: a host[:port], without a scheme or path
// (https://host/v1/ as docker accepts it), or Docker Hub.
func registryOf(args []string) string {
	if len(args) == 0 || args[0] == registry.DockerHubAuthKey {
		return "docker.io"
	}
	s := strings.TrimPrefix(strings.TrimPrefix(args[0], "https://"), "http://")
	s, _, _ = strings.Cut(s, "/")
	return s
}

// insecureOf adds $BERTH_INSECURE_REGISTRIES, as pull and push do.
func insecureOf(flags []string) []string {
	env := strings.FieldsFunc(os.Getenv("BERTH_INSECURE_REGISTRIES"), func(r rune) bool { return r == ',' || r == ' ' })
	return append(append([]string(nil), flags...), env...)
}
