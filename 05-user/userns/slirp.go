//go:build linux

package userns

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/01-uts/spine"
)

func init() {
	spine.Register("slirp4netns", func() spine.Step { return &Slirp{} })
}

// A network namespace of its own is no problem without root: the
// container's root holds CAP_NET_ADMIN over it. What it cannot do is reach
// out: a veth pair has one end in the host's namespace, which only the
// host's root may touch. So a rootless container gets lo only, or a user-
// space TCP/IP stack: slirp4netns, a process of the user's in the host's
// namespace, owns a tap device inside the container's, reads its frames,
// and turns each TCP connection or UDP flow into an ordinary socket of its
// own on the host. No packet is routed; every connection is re-made.

// Slirp4netns's fixed layout (its defaults, as podman uses them).
const (
	SlirpMode    = "slirp4netns"
	SlirpDevice  = "tap0"
	SlirpAddress = "10.0.2.100" // the container
	SlirpGateway = "10.0.2.2"   // the host, as seen from inside
	SlirpDNS     = "10.0.2.3"   // slirp4netns forwards it to the host's resolver
)

// netSteps adds slirp4netns when --net asks for it. Stage 04's option owns
// --net: it accepts slirp4netns as a mode of this stage (OtherModes in
// 05-user/main.go), gives it a network namespace and brings lo up.
func netSteps(o *Options) ([]spine.Step, error) {
	if o.fs == nil {
		return nil, nil
	}
	f := o.fs.Lookup("net")
	if f == nil || f.Value.String() != SlirpMode {
		return nil, nil
	}
	path, err := SlirpPath()
	if err != nil {
		return nil, err
	}
	return []spine.Step{&Slirp{Path: path}}, nil
}

// SlirpPath finds slirp4netns, or says how to install it.
func SlirpPath() (string, error) {
	path, err := exec.LookPath("slirp4netns")
	if err != nil {
		return "", errors.New("--net=slirp4netns: slirp4netns not found in $PATH: install it (sudo apt-get install slirp4netns)")
	}
	return path, nil
}

// Slirp runs slirp4netns for the life of the container.
type Slirp struct {
	Path string `json:"path"`

	cmd   *exec.Cmd
	exitW *os.File // slirp4netns exits when this closes, even if berth is SIGKILLed
}

func (*Slirp) Name() string { return "slirp4netns" }

// Prepare writes the resolv.conf that points at slirp4netns's DNS
// forwarder and has it bind-mounted over the rootfs's.
func (s *Slirp) Prepare(c *spine.Container) error {
	p := filepath.Join(c.StateDir(), "resolv.conf")
	if err := os.WriteFile(p, []byte("nameserver "+SlirpDNS+"\n"), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	c.Spec.Mounts = append(c.Spec.Mounts, specs.Mount{Destination: "/etc/resolv.conf", Source: p, Type: "bind", Options: []string{"rbind", "ro"}})
	return nil
}

// Parent starts slirp4netns once the uid map is written (it joins the
// container's user namespace to get the right to add a device to its
// network namespace) and waits until tap0 is configured, so that the
// command never starts without its network.
func (s *Slirp) Parent(c *spine.Container, pid int) error {
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("pipe: %w", err)
	}
	defer readyR.Close()
	exitR, exitW, err := os.Pipe()
	if err != nil {
		readyW.Close()
		return fmt.Errorf("pipe: %w", err)
	}
	cmd := exec.Command(s.Path, "--configure", "--mtu=65520", "--disable-host-loopback",
		"--ready-fd=3", "--exit-fd=4", strconv.Itoa(pid), SlirpDevice)
	cmd.ExtraFiles = []*os.File{readyW, exitR}
	if !c.Detached {
		cmd.SysProcAttr = &unix.SysProcAttr{Pdeathsig: unix.SIGKILL}
	}
	// Detached (stage 09), its parent, the creator, exits soon: then the
	// exit pipe alone, handed on (Held), says how long it lives.
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	err = cmd.Start()
	readyW.Close()
	exitR.Close()
	if err != nil {
		exitW.Close()
		return fmt.Errorf("start %s: %w", s.Path, err)
	}
	s.cmd, s.exitW = cmd, exitW
	c.Logf("net: %s is pid %d", s.Path, cmd.Process.Pid)

	// It writes "1" when ready; EOF means it died first.
	buf := make([]byte, 1)
	if _, err := io.ReadFull(readyR, buf); err != nil {
		s.stop()
		return fmt.Errorf("%s did not come up: %s", s.Path, strings.TrimSpace(log.String()))
	}
	c.Logf("net: %s up: %s/24 via %s, DNS %s", SlirpDevice, SlirpAddress, SlirpGateway, SlirpDNS)
	return nil
}

// Held hands the exit pipe to whoever outlives a detached container's
// creator (spine.Holder): slirp4netns lives until that one closes it.
func (s *Slirp) Held() []*os.File {
	if s.exitW == nil {
		return nil
	}
	f := s.exitW
	s.exitW, s.cmd = nil, nil // no longer ours to close or wait for
	return []*os.File{f}
}

// Cleanup stops slirp4netns. After a SIGKILLed runtime there is nothing to
// do: the exit pipe closed with it, and slirp4netns exited.
func (s *Slirp) Cleanup(c *spine.Container) error {
	s.stop()
	return nil
}

func (s *Slirp) stop() {
	if s.exitW != nil {
		s.exitW.Close()
		s.exitW = nil
	}
	if s.cmd != nil {
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}
