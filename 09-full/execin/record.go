//go:build linux

package execin

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"berth/01-uts/spine/proc"
)

// A Record is one exec, as Docker's exec inspect shows it (the Engine
// API's ExecInspect), kept in the container's live directory:
// <state-root>/.containers/<id>/execs/<exec-id>.json. Live, not in the
// data root: an exec's processes end with the container's, so its
// records go with the container's run.
type Record struct {
	ID            string        `json:"ID"`
	ContainerID   string        `json:"ContainerID"`
	Running       bool          `json:"Running"`
	ExitCode      *int          `json:"ExitCode"`
	ProcessConfig ProcessConfig `json:"ProcessConfig"`
	OpenStdin     bool          `json:"OpenStdin"`
	OpenStderr    bool          `json:"OpenStderr"`
	OpenStdout    bool          `json:"OpenStdout"`
	CanRemove     bool          `json:"CanRemove"`
	DetachKeys    string        `json:"DetachKeys"`
	Pid           int           `json:"Pid"`
	// PidStart and BootID name the process for liveness (package proc):
	// a detached exec's end is seen, not recorded, since nobody waits.
	PidStart uint64 `json:"pidStart,omitempty"`
	BootID   string `json:"bootID,omitempty"`
}

// ProcessConfig is what the exec runs.
type ProcessConfig struct {
	Tty        bool     `json:"tty"`
	Entrypoint string   `json:"entrypoint"`
	Arguments  []string `json:"arguments"`
	Privileged bool     `json:"privileged"`
	User       string   `json:"user,omitempty"`
}

// MaxRecords bounds the records a container keeps: the oldest finished
// ones go first (Docker forgets them after five minutes).
const MaxRecords = 64

var execIDPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// NewRecord is the record of an exec about to start.
func NewRecord(containerID string, o Options, stdin, detach bool) *Record {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("execin: crypto/rand: " + err.Error())
	}
	r := &Record{ID: hex.EncodeToString(b), ContainerID: containerID, OpenStdin: stdin,
		OpenStdout: !detach, OpenStderr: !detach,
		ProcessConfig: ProcessConfig{Tty: o.Tty, Entrypoint: o.Args[0], Arguments: append([]string{}, o.Args[1:]...),
			Privileged: o.Privileged, User: o.User}}
	return r
}

// Started notes the process that runs it.
func (r *Record) Started(pid int) {
	r.Running, r.Pid = true, pid
	r.PidStart, _ = proc.StartTime(pid)
	r.BootID = proc.BootID()
}

// Exited notes its exit code.
func (r *Record) Exited(code int) {
	r.Running, r.ExitCode = false, &code
}

// Write stores the record in dir (the container's live directory),
// renamed into place, and drops the oldest finished records beyond
// MaxRecords.
func (r *Record) Write(live string) error {
	dir := filepath.Join(live, "execs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("exec record: %w", err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	p := filepath.Join(dir, r.ID+".json")
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	prune(dir)
	return nil
}

// ReadRecord reads an exec's record; a running one whose process is gone
// (a detached exec) reads as not running.
func ReadRecord(live, execID string) (*Record, error) {
	if !execIDPattern.MatchString(execID) {
		return nil, fmt.Errorf("no such exec: %s", execID)
	}
	b, err := os.ReadFile(filepath.Join(live, "execs", execID+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no such exec: %s", execID)
	}
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("exec record %s: %w", execID, err)
	}
	if r.Running && !proc.Running(r.Pid, r.PidStart, r.BootID) {
		r.Running = false
	}
	return &r, nil
}

// prune removes the oldest finished records beyond MaxRecords.
func prune(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) <= MaxRecords {
		return
	}
	type rec struct {
		name string
		mod  int64
	}
	var done []rec
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		r, err := ReadRecord(filepath.Dir(dir), id)
		if err != nil || r.Running {
			continue
		}
		if info, err := e.Info(); err == nil {
			done = append(done, rec{e.Name(), info.ModTime().UnixNano()})
		}
	}
	sort.Slice(done, func(i, j int) bool { return done[i].mod < done[j].mod })
	for i := 0; i < len(entries)-MaxRecords && i < len(done); i++ {
		_ = os.Remove(filepath.Join(dir, done[i].name))
	}
}
