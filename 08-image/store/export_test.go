//go:build linux

package store

// What the tests of package store_test reach inside.
var Load = (*Store).load
