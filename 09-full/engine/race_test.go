//go:build linux

package engine

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"berth/01-uts/spine/proc"
	"berth/09-full/store"
)

// A store and an engine whose monitor is a script that reports a failed
// create: enough to drive the engine's transitions without containers.
func raceEngine(t *testing.T) (*Engine, *store.Record) {
	t.Helper()
	return raceEngineWith(t, "echo 'error 125 the test monitor creates nothing' >&3")
}

// raceEngineWith is raceEngine with a monitor that runs script (sh).
func raceEngineWith(t *testing.T, script string) (*Engine, *store.Record) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "lib"), filepath.Join(dir, "run"))
	require.NoError(t, err)
	mon := filepath.Join(dir, "monitor")
	require.NoError(t, os.WriteFile(mon, []byte("#!/bin/sh\n"+script+"\n"), 0o700))
	e := &Engine{Store: st, DataRoot: st.DataRoot, StateRoot: st.StateRoot, Berth: "/nonexistent", Monitor: mon}
	rec := &store.Record{ID: store.NewID(), Name: "race", Created: time.Now(), Spec: spec()}
	require.NoError(t, st.Create(rec))
	return e, rec
}

// aProcess is a process that lives until the test ends: a monitor.
func aProcess(t *testing.T) (int, uint64) {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	start, err := proc.StartTime(cmd.Process.Pid)
	require.NoError(t, err)
	return cmd.Process.Pid, start
}

// aDeadProcess is the pid and start time of a process that has exited: an
// init whose end the monitor has seen.
func aDeadProcess(t *testing.T) (int, uint64) {
	t.Helper()
	cmd := exec.Command("sleep", "0.01")
	require.NoError(t, cmd.Start())
	start, err := proc.StartTime(cmd.Process.Pid)
	require.NoError(t, err)
	require.NoError(t, cmd.Wait())
	return cmd.Process.Pid, start
}

// The old run's exit command, coming after a new run began, finds the
// state naming another run and does nothing: before, it recorded 255 and
// ran the steps' cleanup, which tore down the new run (froze its cgroup
// on v1 and hung, killed it on v2).
func TestExitOfAnOldRunLeavesTheNewOneAlone(t *testing.T) {
	e, rec := raceEngine(t)
	newPid, newStart := aProcess(t)
	monPid, monStart := aProcess(t)
	now := time.Now()
	running := &store.State{Status: store.Running, Pid: newPid, PidStart: newStart, BootID: proc.BootID(),
		MonitorPid: monPid, MonitorStart: monStart, StartedAt: now}
	require.NoError(t, e.Store.WriteState(rec.ID, running))
	spineDir := e.SpineDir(rec.ID)
	require.NoError(t, os.MkdirAll(spineDir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(spineDir, "the-new-run"), nil, 0o600))

	oldPid, oldStart := aDeadProcess(t)
	d, err := e.Exited(rec.ID, Run{Pid: oldPid, Start: oldStart})
	require.NoError(t, err)
	assert.False(t, d.Restart)
	st, err := e.Store.ReadState(rec.ID)
	require.NoError(t, err)
	assert.Equal(t, store.Running, st.Status, "the new run is not the one that ended")
	assert.Equal(t, newPid, st.Pid)
	assert.FileExists(t, filepath.Join(spineDir, "the-new-run"), "the new run's steps are not cleaned up")

	// Its own exit is recorded.
	_, err = e.Exited(rec.ID, Run{Pid: newPid, Start: newStart})
	require.NoError(t, err)
	st, err = e.Store.ReadState(rec.ID)
	require.NoError(t, err)
	assert.Equal(t, store.Exited, st.Status)
	assert.NoDirExists(t, spineDir)
}

// start in the window between the init's exit (the monitor wrote the exit
// file, so the view says exited) and the exit command's record: start
// waits for the record, then creates. The hook plays the exit command at
// the moment start lets go of the lock; before the fix, start created at
// once (wiping the exit file) and the hook never ran.
func TestStartWaitsForThePreviousExitToBeRecorded(t *testing.T) {
	e, rec := raceEngine(t)
	initPid, initStart := aDeadProcess(t)
	monPid, monStart := aProcess(t)
	started := time.Now().Add(-time.Second)
	require.NoError(t, e.Store.WriteState(rec.ID, &store.State{Status: store.Running, Pid: initPid, PidStart: initStart,
		BootID: proc.BootID(), MonitorPid: monPid, MonitorStart: monStart, StartedAt: started}))
	live, err := e.Store.ClearLive(rec.ID)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(live, store.ExitFile), store.AppendExit(nil, 7, time.Now()), 0o600))
	v, err := e.Store.View(rec.ID)
	require.NoError(t, err)
	require.Equal(t, store.Exited, v.Status, "the window: the view says exited, the record says running")

	var recorded *store.State
	testHookExitPending = func() {
		_, err := e.Exited(rec.ID, Run{Pid: initPid, Start: initStart})
		require.NoError(t, err)
		recorded, err = e.Store.ReadState(rec.ID)
		require.NoError(t, err)
	}
	defer func() { testHookExitPending = nil }()

	err = e.Start(rec.ID)
	require.NotNil(t, recorded, "start created a new run before the old one's exit was recorded")
	assert.Equal(t, store.Exited, recorded.Status)
	assert.Equal(t, 7, recorded.ExitCode, "the exit code the monitor saw, not 255")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the test monitor creates nothing", "then it created")
}

// kill -s HUP (a reload) leaves the restart policy on; SIGKILL, or the
// container's stop signal, turns it off until the next start, as Docker.
func TestKillStopsThePolicyOnlyForAnEndingSignal(t *testing.T) {
	for _, tc := range []struct {
		sig     syscall.Signal
		stopped bool
	}{{unix.SIGHUP, false}, {unix.SIGUSR1, false}, {unix.SIGTERM, true}, {unix.SIGKILL, true}} {
		e, rec := raceEngine(t)
		initPid, initStart := aProcess(t)
		monPid, monStart := aProcess(t)
		require.NoError(t, e.Store.WriteState(rec.ID, &store.State{Status: store.Running, Pid: initPid, PidStart: initStart,
			BootID: proc.BootID(), MonitorPid: monPid, MonitorStart: monStart, StartedAt: time.Now()}))
		require.NoError(t, e.Kill(rec.ID, tc.sig))
		st, err := e.Store.ReadState(rec.ID)
		require.NoError(t, err)
		assert.Equal(t, tc.stopped, st.ManuallyStopped, "kill -s %v", tc.sig)
	}
}

// rm removes a container whose record cannot be read (made by an older
// berth: too big, or damaged), and frees its name; before, it said "no
// such container" and the name stayed taken for good.
func TestRemoveAnUnreadableRecord(t *testing.T) {
	e, rec := raceEngine(t)
	require.NoError(t, os.WriteFile(filepath.Join(e.Store.Dir(rec.ID), "config.json"), []byte("{not json"), 0o600))
	require.NoError(t, e.Remove("race", true, false))
	assert.NoDirExists(t, e.Store.Dir(rec.ID))
	require.NoError(t, e.Store.Create(&store.Record{ID: store.NewID(), Name: "race", Spec: spec()}), "the name is free")
}

// The internal verbs take a full id and nothing else: `berth internal
// exit ../victim` removed a directory outside the state root (the
// container "removed meanwhile" path cleans up its spine directory).
func TestInternalVerbsRefuseAPath(t *testing.T) {
	e, _ := raceEngine(t)
	victim := filepath.Join(filepath.Dir(e.StateRoot), "victim")
	require.NoError(t, os.MkdirAll(victim, 0o700))
	_, err := e.Exited("../victim", Run{})
	require.Error(t, err)
	assert.DirExists(t, victim)
	require.Error(t, e.CreateInit("../victim", false, InitFiles{}))
	assert.DirExists(t, victim)
}

// A start whose command died after the init took its exec FIFO, before
// Running was written: the container runs, its record says created. Any
// command that reconciles it sees it as running (the FIFO is gone, the
// init lives): kill works, where it said "not running".
func TestStartedButRecordedCreated(t *testing.T) {
	e, rec := raceEngine(t)
	initPid, initStart := aProcess(t)
	monPid, monStart := aProcess(t)
	require.NoError(t, e.Store.WriteState(rec.ID, &store.State{Status: store.Created, Pid: initPid, PidStart: initStart,
		BootID: proc.BootID(), MonitorPid: monPid, MonitorStart: monStart}))
	require.NoError(t, os.MkdirAll(e.SpineDir(rec.ID), 0o700)) // no exec.fifo: consumed
	require.NoError(t, e.Kill(rec.ID, unix.SIGKILL))
	st, err := e.Store.ReadState(rec.ID)
	require.NoError(t, err)
	assert.Equal(t, store.Running, st.Status)
}

// The monitor is recorded before the command waits for its report: a
// command killed while it waits leaves a monitor the store knows of (it
// left one nobody recorded, with an init holding the ports). The test
// monitor reports what the state said while it ran.
func TestMonitorRecordedBeforeTheWait(t *testing.T) {
	e, rec := raceEngineWith(t, `echo "error 125 me=$$ recorded=$(grep -o '"monitorPid": *[0-9]*' "$BERTH_DATA_ROOT"/containers/*/state.json | tr -dc 0-9)" >&3`)
	err := e.Create(rec)
	require.Error(t, err)
	var me, recorded int
	_, serr := fmt.Sscanf(err.Error()[strings.Index(err.Error(), "me="):], "me=%d recorded=%d", &me, &recorded)
	require.NoError(t, serr, err.Error())
	assert.Equal(t, me, recorded, "the state names the monitor while it creates")
}

// A create whose command was killed while it waited left a monitor and a
// waiting init: start undoes that run (kills the init the spine
// recorded, waits for its monitor to record the end) before it creates.
func TestStartUndoesAnInterruptedCreate(t *testing.T) {
	e, rec := raceEngine(t)
	initCmd := exec.Command("sleep", "600")
	require.NoError(t, initCmd.Start())
	t.Cleanup(func() { _ = initCmd.Process.Kill(); _ = initCmd.Wait() })
	initStart, err := proc.StartTime(initCmd.Process.Pid)
	require.NoError(t, err)
	monCmd := exec.Command("sleep", "600")
	require.NoError(t, monCmd.Start())
	t.Cleanup(func() { _ = monCmd.Process.Kill(); _ = monCmd.Wait() })
	monStart, err := proc.StartTime(monCmd.Process.Pid)
	require.NoError(t, err)
	require.NoError(t, e.Store.WriteState(rec.ID, &store.State{Status: store.Created, BootID: proc.BootID(),
		MonitorPid: monCmd.Process.Pid, MonitorStart: monStart}))
	require.NoError(t, os.MkdirAll(e.SpineDir(rec.ID), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(e.SpineDir(rec.ID), "state.json"),
		fmt.Appendf(nil, `{"pid":%d,"pidStart":%d,"bootID":%q}`, initCmd.Process.Pid, initStart, proc.BootID()), 0o600))

	initDone := make(chan error, 1)
	go func() { initDone <- initCmd.Wait() }()
	hooked := false
	testHookExitPending = func() {
		hooked = true
		// The monitor, once its init dies, records the end and exits.
		go func() {
			<-initDone
			_ = monCmd.Process.Kill()
		}()
	}
	defer func() { testHookExitPending = nil }()
	err = e.Start(rec.ID)
	require.True(t, hooked, "start created again over a run nobody recorded")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the test monitor creates nothing", "then it created")
}

// A signal for a run reaches that run's process only: a pid whose start
// time is not the recorded one is a stranger's now.
func TestSignalRunSparesAStranger(t *testing.T) {
	pid, start := aProcess(t)
	// Alive and not a zombie (the test reaps its children only at its end).
	alive := func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		i := strings.LastIndexByte(string(b), ')')
		return err == nil && i > 0 && !strings.HasPrefix(string(b[i+1:]), " Z")
	}
	require.NoError(t, SignalRun(pid, start+1, unix.SIGKILL))
	time.Sleep(50 * time.Millisecond) // a SIGKILL sent would have landed by now
	assert.True(t, alive(), "the stranger lives")
	require.NoError(t, SignalRun(pid, start, unix.SIGKILL))
	for deadline := time.Now().Add(10 * time.Second); alive(); time.Sleep(5 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "the run's own process dies")
	}
}
