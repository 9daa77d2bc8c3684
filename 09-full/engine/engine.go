//go:build linux

package engine

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth/01-uts/spine"
	"berth/04-net/network"
	"berth/09-full/networks"
	"berth/09-full/store"
)

// An Engine runs the containers of one store.
type Engine struct {
	Store     *store.Store
	DataRoot  string // images, layers, container records
	StateRoot string // live state: the spine's state directories, the monitors'
	// Berth is the berth binary the monitor runs for the heavy work
	// (internal create and exit); Monitor the berth-monitor binary.
	Berth, Monitor string
	Verbose        bool
}

// New opens the store of the two roots and finds the binaries: berth is
// this program, berth-monitor is beside it (else on $PATH).
func New(dataRoot, stateRoot string) (*Engine, error) {
	st, err := store.Open(dataRoot, stateRoot)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the berth binary: %w", err)
	}
	e := &Engine{Store: st, DataRoot: dataRoot, StateRoot: stateRoot, Berth: self}
	e.Monitor = filepath.Join(filepath.Dir(self), "berth-monitor")
	if _, err := os.Stat(e.Monitor); err != nil {
		p, lerr := exec.LookPath("berth-monitor")
		if lerr != nil {
			return nil, fmt.Errorf("berth-monitor is neither beside %s nor on $PATH: run make build (or sudo make install)", self)
		}
		e.Monitor = p
	}
	return e, nil
}

// SpineDir is the container's state directory of the spine (stages
// 01-08's layout: <state-root>/<id>, beside theirs, so that one IPAM and
// one collection serve them all).
func (e *Engine) SpineDir(id string) string { return filepath.Join(e.StateRoot, id) }

// SpineContainer is a container as the spine and the steps see it: its
// id, the config's spec, the roots, the steps (from Steps). berth's own
// containers come through here (CreateInit); so can an OCI bundle's
// (issue 16): spine.Create it detached, spine.Start it, spine.Cleanup it.
func SpineContainer(id string, cfg *Config, dataRoot, stateRoot string, steps []spine.Step) *spine.Container {
	c := spine.NewContainer("berth", nil)
	c.ID = id
	c.Spec = cfg.Spec
	c.DataRoot, c.State = dataRoot, stateRoot
	c.Steps = steps
	return c
}

// prepareNetwork finds the init of the container whose network namespace
// --network container:NAME joins, as it runs now (it may have restarted).
func (e *Engine) prepareNetwork(cfg *Config) error {
	n := &cfg.Settings.Network
	if n.Name != "" {
		net, err := networks.Open(e.DataRoot).Get(n.Name)
		if err != nil {
			return err
		}
		n.bridge, n.subnet, n.ipRange, n.internal = net.Bridge, net.Subnet, net.IPRange, net.Internal
		return nil
	}
	if n.Mode != network.ModeContainer {
		return nil
	}
	other, err := e.Store.Get(n.Container)
	if err != nil {
		return fmt.Errorf("--network container:%s: %w", n.Container, err)
	}
	st, err := e.Store.View(other.ID)
	if err != nil {
		return err
	}
	if st.Status != store.Running {
		return fmt.Errorf("cannot join network of a non running container: %s", other.ID)
	}
	n.pid = st.Pid
	path := fmt.Sprintf("/proc/%d/ns/net", st.Pid)
	ns := cfg.Spec.Linux.Namespaces[:0]
	for _, x := range cfg.Spec.Linux.Namespaces {
		if x.Type != specs.NetworkNamespace {
			ns = append(ns, x)
		}
	}
	cfg.Spec.Linux.Namespaces = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: path})
	return nil
}
