//go:build linux && !cgo

package nsenter

// Without cgo the constructor would be left out silently and a "joined"
// process would run in the caller's namespaces. Refuse to build instead:
// the compiler names this identifier.
var _ = thisPackageNeedsCgo_BuildWithCGO_ENABLED_1
