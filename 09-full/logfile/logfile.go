// Package logfile is Docker's json-file log driver: one JSON object per
// line, {"log":"...","stream":"stdout","time":"..."}, in
// <id>-json.log, rotated to <id>-json.log.1, .2 ... when it passes a
// size (--log-opt max-size, max-file). The writer is the container's
// monitor, in C (09-full/berth-monitor/logs.c); this package is the
// reader (reader.go), which serves `logs`, with --tail, --since, --until
// and --follow across rotations. The tests write logs with a Go writer
// that does what the monitor does (writer_test.go).
package logfile

import "time"

// An Entry is one line of the log: what the container wrote (a line, with
// its newline, or the part of one that filled the buffer), which stream,
// and when it arrived.
type Entry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// Streams.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// MaxLine is the longest piece of a line one entry holds, as Docker's
// 16 KiB: the monitor splits a longer line into several entries, the last
// one with the newline.
const MaxLine = 16 * 1024

// MaxFiles bounds max-file: each rotation renames every kept file, and
// a number near 2^31 would have the monitor rename for ever.
const MaxFiles = 100
