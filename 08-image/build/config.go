//go:build linux

package build

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// defaultShell runs the shell form of RUN, CMD and ENTRYPOINT until a
// SHELL instruction changes it.
var defaultShell = []string{"/bin/sh", "-c"}

// metaState is what a stage carries besides the image config: the SHELL
// (an OCI config has no field for it) and whether CMD was set in this
// stage (ENTRYPOINT clears an inherited CMD, not one set here).
type metaState struct {
	shell  []string
	cmdSet bool
}

// applyMeta applies an instruction that changes only the image config:
// ENV, LABEL, USER, CMD, ENTRYPOINT, EXPOSE, VOLUME, STOPSIGNAL, SHELL,
// and WORKDIR's setting (the build also creates the directory). It returns
// the text docker's history shows for it: CMD ["sh"].
func applyMeta(cfg *ocispec.ImageConfig, in instruction, x expander, ms *metaState) (string, error) {
	switch in.cmd {
	case "ENV", "LABEL":
		kvs, err := x.keyValues(in)
		if err != nil {
			return "", err
		}
		var parts []string
		for _, kv := range kvs {
			if in.cmd == "ENV" {
				cfg.Env = setEnv(cfg.Env, kv[0], kv[1])
			} else {
				labels := maps.Clone(cfg.Labels) // the parent's map is shared
				if labels == nil {
					labels = map[string]string{}
				}
				labels[kv[0]] = kv[1]
				cfg.Labels = labels
			}
			parts = append(parts, kv[0]+"="+kv[1])
		}
		return in.cmd + " " + strings.Join(parts, " "), nil
	case "USER", "STOPSIGNAL", "WORKDIR":
		if len(in.args) != 1 {
			return "", in.errorf("takes one argument")
		}
		v, err := x.word(in, in.args[0])
		if err != nil {
			return "", err
		}
		switch in.cmd {
		case "USER":
			if v == "" {
				return "", in.errorf("needs a user")
			}
			cfg.User = v
		case "STOPSIGNAL":
			if err := checkSignal(v); err != nil {
				return "", in.errorf("%v", err)
			}
			cfg.StopSignal = v
		case "WORKDIR":
			if v == "" {
				return "", in.errorf("needs a directory")
			}
			if !path.IsAbs(v) {
				base := cfg.WorkingDir
				if base == "" {
					base = "/"
				}
				v = path.Join(base, v)
			}
			cfg.WorkingDir = path.Clean(v)
			v = cfg.WorkingDir
		}
		return in.cmd + " " + v, nil
	case "CMD":
		cfg.Cmd = commandLine(in, ms.shell)
		ms.cmdSet = true
		return fmt.Sprintf("CMD %q", cfg.Cmd), nil
	case "ENTRYPOINT":
		cfg.Entrypoint = commandLine(in, ms.shell)
		if !ms.cmdSet {
			cfg.Cmd = nil // as docker: a CMD from the base image would be arguments to another program
		}
		return fmt.Sprintf("ENTRYPOINT %q", cfg.Entrypoint), nil
	case "SHELL":
		ms.shell = append([]string{}, in.args...)
		return fmt.Sprintf("SHELL %q", ms.shell), nil
	case "EXPOSE":
		ws, err := x.words(in, in.args)
		if err != nil {
			return "", err
		}
		ports := maps.Clone(cfg.ExposedPorts)
		if ports == nil {
			ports = map[string]struct{}{}
		}
		var added []string
		for _, w := range ws {
			ps, err := exposedPorts(w)
			if err != nil {
				return "", in.errorf("%v", err)
			}
			for _, p := range ps {
				ports[p] = struct{}{}
				added = append(added, p)
			}
		}
		cfg.ExposedPorts = ports
		return "EXPOSE " + strings.Join(added, " "), nil
	case "VOLUME":
		ws, err := x.words(in, in.args)
		if err != nil {
			return "", err
		}
		vols := maps.Clone(cfg.Volumes)
		if vols == nil {
			vols = map[string]struct{}{}
		}
		for _, w := range ws {
			if w == "" {
				return "", in.errorf("needs a path")
			}
			vols[w] = struct{}{}
		}
		cfg.Volumes = vols
		return fmt.Sprintf("VOLUME %v", ws), nil
	}
	return "", in.errorf("does not change the image config")
}

// commandLine is RUN's, CMD's or ENTRYPOINT's argv: the exec form as
// written (no variable expansion: no shell reads it), or the shell form
// handed to the SHELL.
func commandLine(in instruction, shell []string) []string {
	if in.json {
		return append([]string{}, in.args...)
	}
	return append(append([]string{}, shell...), in.args[0])
}

// exposedPorts reads 80, 80/udp or 8000-8002/tcp as docker does.
func exposedPorts(s string) ([]string, error) {
	ports, proto, _ := strings.Cut(s, "/")
	proto = strings.ToLower(proto)
	switch proto {
	case "":
		proto = "tcp"
	case "tcp", "udp", "sctp":
	default:
		return nil, fmt.Errorf("%s: the protocol must be tcp, udp or sctp", s)
	}
	lo, hi, isRange := strings.Cut(ports, "-")
	a, err1 := strconv.ParseUint(lo, 10, 16)
	b := a
	var err2 error
	if isRange {
		b, err2 = strconv.ParseUint(hi, 10, 16)
	}
	if err1 != nil || err2 != nil || a == 0 || b < a || b-a > 1000 {
		return nil, fmt.Errorf("%s: not a port, or a range of at most 1000 (80, 80/udp, 8000-8010)", s)
	}
	var out []string
	for p := a; p <= b; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}

// checkSignal accepts a signal name (SIGTERM, TERM) or number, as the
// runtime that stops the container will read it.
func checkSignal(s string) error {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 {
			return fmt.Errorf("%s: not a signal number", s)
		}
		return nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if unix.SignalNum(name) == 0 {
		return fmt.Errorf("%s: not a signal name", s)
	}
	return nil
}

// changeable are the instructions import --change takes (docker import
// --change: those that only set the config).
var changeable = []string{"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}

// ApplyChanges applies Dockerfile instructions to an image config, as
// docker import --change does: CMD ["sh"], ENV A=b, WORKDIR /app...
// Variables expand with the config's own ENV.
func ApplyChanges(cfg *ocispec.ImageConfig, changes []string) error {
	ms := &metaState{shell: defaultShell}
	for _, c := range changes {
		res, err := parser.Parse(strings.NewReader(c))
		if err != nil {
			return fmt.Errorf("--change %q: %w", c, err)
		}
		for _, n := range res.AST.Children {
			in := newInstruction(n, fmt.Sprintf("--change %q", c))
			if !slices.Contains(changeable, in.cmd) {
				return fmt.Errorf("--change %q: %s cannot change an image config (one of %s)", c, in.cmd, strings.Join(changeable, ", "))
			}
			if err := checkInstruction(in); err != nil {
				return err
			}
			if _, err := applyMeta(cfg, in, newExpander(res.EscapeToken, envList(cfg.Env)), ms); err != nil {
				return err
			}
		}
	}
	return nil
}
