// Package nsenter runs a process inside the namespaces of a running
// container, joined before the Go runtime starts: what `berth exec` and
// `berth-oci exec` are built on.
//
// setns(2) refuses to move a multithreaded process into a user, mount or
// time namespace, and a Go program has several threads before main runs.
// So a C constructor (nsenter.c) does the joining in a fresh process of
// this binary, before the runtime starts, and clones once more so that
// the process is inside the PID namespace too; Cmd drives it from the
// caller's side, and Joined, Conn, Chdir and CloseExtraFDs serve the
// final process. The defences of CVE-2019-5736 are built in: the process
// runs a sealed memfd copy of the binary (the spine's sealexe, as every
// container's init), and is not dumpable until
// it executes the command.
//
// A binary that imports the package needs cgo, and berth links it
// statically (README.md says why and how). README.md is the chapter.
package nsenter
