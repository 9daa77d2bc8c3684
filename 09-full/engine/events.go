//go:build linux

package engine

import (
	"berth/09-full/events"
	"berth/09-full/store"
)

// event appends what happened to a container to the journal (docker
// events), with its name and image; extra adds attributes (exitCode,
// signal). A journal that cannot be written does not fail the change.
func (e *Engine) event(rec *store.Record, action string, extra map[string]string) {
	attrs := map[string]string{"name": rec.Name}
	if rec.Image.Ref != "" {
		attrs["image"] = rec.Image.Ref
	}
	for k, v := range extra {
		attrs[k] = v
	}
	_ = events.Append(e.StateRoot, action, rec.ID, attrs)
}

// Event is event for the command line's own changes (exec, rename).
func (e *Engine) Event(rec *store.Record, action string, extra map[string]string) {
	e.event(rec, action, extra)
}
