//go:build linux

package engine

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"berth/04-net/network"
	"berth/internal/lockfile"
)

// A user-defined network's name server (09-full/netdns) is a process of
// its own, `berth internal dns NETWORK`, started by the first container of
// the network that needs it and ending a few seconds after the last one
// (no daemon: as podman's aardvark-dns). Two locks in the state root's
// network directory order the hand-over:
//
//	dns-BRIDGE.lock  held by the running server for as long as it serves
//	dns-BRIDGE.gate  shared by each container being created on the network,
//	                 from before it looks for the server until it holds its
//	                 address lease; the server takes it exclusively (without
//	                 waiting) to decide that nobody is left, so it never
//	                 leaves while a container is arriving.
func DNSLock(stateRoot, bridge string) string {
	return filepath.Join(network.Dir(stateRoot), "dns-"+bridge+".lock")
}

// DNSGate is the lock containers being created share (DNSLock says why).
func DNSGate(stateRoot, bridge string) string {
	return filepath.Join(network.Dir(stateRoot), "dns-"+bridge+".gate")
}

// DNSLog is where the server writes what it has to say, up to DNSLogMax
// bytes (the state root is in memory); a new server starts it again once
// it is full.
func DNSLog(stateRoot, bridge string) string {
	return filepath.Join(network.Dir(stateRoot), "dns-"+bridge+".log")
}

// DNSLogMax bounds a network's name server log.
const DNSLogMax = 1 << 20

// ensureDNS makes sure the network's server runs and answers before the
// container's command does. The returned function drops the gate: call it
// once the container holds its lease (or failed).
func (e *Engine) ensureDNS(n *Network) (func(), error) {
	if err := os.MkdirAll(network.Dir(e.StateRoot), 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", network.Dir(e.StateRoot), err)
	}
	gate, err := lockfile.Acquire(context.Background(), DNSGate(e.StateRoot, n.bridge), lockfile.Shared)
	if err != nil {
		return nil, err
	}
	if lockfile.Held(DNSLock(e.StateRoot, n.bridge)) {
		return gate.Unlock, nil
	}
	cmd := exec.Command(e.Berth, "--root", e.StateRoot, "--data-root", e.DataRoot, "internal", "dns", n.Name)
	cmd.Env = monitorEnv(os.Environ())
	// Its own session: it outlives this process and the terminal.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		gate.Unlock()
		return nil, err
	}
	logPath := DNSLog(e.StateRoot, n.bridge)
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		gate.Unlock()
		return nil, fmt.Errorf("open %s: %w", logPath, err)
	}
	defer logf.Close()
	// No server runs (the lock is free), so none is writing.
	if fi, err := logf.Stat(); err == nil && fi.Size() >= DNSLogMax {
		if err := logf.Truncate(0); err != nil {
			gate.Unlock()
			return nil, fmt.Errorf("truncate %s: %w", logPath, err)
		}
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		gate.Unlock()
		return nil, fmt.Errorf("start the name server of network %s: %w", n.Name, err)
	}
	// It says "ready" once its sockets are bound (or another server's
	// are); it lives on, reparented once this process ends. Reaped only
	// after its line is read: Wait closes the pipe when the process exits,
	// and a second server (one already ran) says "ready" and exits at
	// once — waited for first, its line was lost and the container
	// refused ("did not start", one run in three of 30 parallel starts).
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
		_ = cmd.Wait()
	}()
	select {
	case s := <-line:
		if strings.TrimSpace(s) != "ready" {
			gate.Unlock()
			return nil, fmt.Errorf("the name server of network %s did not start (see %s)", n.Name, logPath)
		}
	case <-time.After(60 * time.Second):
		// A guard against a hang, not a measure: 30 containers starting
		// at once under the VM suite's emulated CPUs took the server
		// past 10 s to start.
		gate.Unlock()
		return nil, fmt.Errorf("the name server of network %s did not answer in 60s (see %s)", n.Name, logPath)
	}
	return gate.Unlock, nil
}

// gatewayOf is a user network's gateway: the container's nameserver.
func gatewayOf(subnet string) string {
	sn, err := network.ParseSubnet(subnet)
	if err != nil {
		return ""
	}
	return network.Gateway(sn).String()
}
