//go:build linux

package tree

import (
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// A file of a tree opened by name must be a regular file: a FIFO blocks
// its reader forever, a device node reads the host's device. An os.Root
// keeps the name beneath the root, as Tree does with fds.

// OpenRegular opens the file name beneath root for reading, and only a
// regular file: anything else (a FIFO, a device, a directory) is refused before
// open, and checked again on the open file, which O_NONBLOCK keeps from
// blocking should a FIFO take the name in between.
func OpenRegular(root *os.Root, name string) (*os.File, error) {
	st, err := root.Stat(name)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is %s, not a regular file: refused", name, fileKind(st.Mode()))
	}
	f, err := root.OpenFile(name, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	if st, err = f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file: refused", name)
	}
	return f, nil
}

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "of mode " + m.String()
}
