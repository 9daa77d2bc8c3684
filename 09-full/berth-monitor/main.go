// Command berth-monitor is the monitor of one detached container of
// `berth` (09-full): its init's parent for as long as it exists, as
// podman's conmon. berth starts it; it is not meant to be run by hand.
// Chapter: docs/09-full.md. The loop is 09-full/monitor.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"

	"berth/09-full/monitor"
)

func main() {
	// Small and idle most of its life: one P (it copies a few streams, no
	// more: fewer threads, fewer per-P caches), garbage collected early.
	runtime.GOMAXPROCS(1)
	debug.SetGCPercent(20)
	var cfg monitor.Config
	fs := flag.NewFlagSet("berth-monitor", flag.ContinueOnError)
	fs.StringVar(&cfg.ID, "id", "", "container id")
	fs.StringVar(&cfg.Berth, "berth", "", "the berth binary")
	fs.StringVar(&cfg.Live, "live", "", "the container's live directory")
	fs.StringVar(&cfg.Log, "log", "", "the json-file log")
	fs.Int64Var(&cfg.LogMaxSize, "log-max-size", 0, "rotate the log past this size (0: never)")
	fs.IntVar(&cfg.LogMaxFile, "log-max-file", 1, "log files kept")
	fs.BoolVar(&cfg.Tty, "tty", false, "the container has a terminal")
	fs.BoolVar(&cfg.Stdin, "stdin", false, "keep the container's stdin open for attach")
	fs.BoolVar(&cfg.StdinOnce, "stdin-once", false, "close it when the first client's input ends")
	fs.DurationVar(&cfg.HealthInterval, "health-interval", 0, "run the health check this often")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if cfg.ID == "" || cfg.Berth == "" || cfg.Live == "" || cfg.Log == "" {
		fmt.Fprintln(os.Stderr, "berth-monitor: started by berth, with --id, --berth, --live and --log")
		os.Exit(2)
	}
	ready := os.NewFile(3, "ready")
	os.Exit(monitor.Run(cfg, ready))
}
