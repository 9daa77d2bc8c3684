/*
 * The wire format between the Go caller (cmd.go) and the C constructor
 * (nsenter.c). One header for both sides: cgo reads these constants, so
 * the two cannot drift apart.
 *
 * Every message is a frame: a header of two native-endian uint32, the type
 * and the payload's length, then the payload. Both ends are the same binary
 * on the same machine, so native byte order is the right one.
 *
 *   caller -> stage 0   JOIN      u32 clone flag (CLONE_NEW*), then the path
 *                                 of the namespace file (no NUL); at most
 *                                 one per kind
 *   caller -> stage 0   START     u32 protocol version: the orders are
 *                                 complete, join
 *   stage 0 -> caller   LOG       text: one step done
 *   stage 0 -> caller   ERROR     u32 errno (0: none), then text naming what
 *                                 failed; the sender exits
 *   stage 0 -> caller   PID       i32 pid of the final process, as the
 *                                 caller's PID namespace numbers it
 *   caller -> final     CONTINUE  no payload: let the Go runtime start
 *
 * After CONTINUE the socket belongs to the Go code on both sides.
 */
#ifndef BERTH_NSENTER_H
#define BERTH_NSENTER_H

#define BERTH_NSENTER_ENV "_BERTH_NSENTER"
#define BERTH_NSENTER_VERSION 1

#define BERTH_NSENTER_MSG_JOIN 1
#define BERTH_NSENTER_MSG_START 2
#define BERTH_NSENTER_MSG_CONTINUE 3
#define BERTH_NSENTER_MSG_LOG 16
#define BERTH_NSENTER_MSG_ERROR 17
#define BERTH_NSENTER_MSG_PID 18

/* A path is at most PATH_MAX (4096) bytes with its NUL; a payload holds
 * one path and its 4-byte flag, or one line of text. */
#define BERTH_NSENTER_MAX_PATH 4095
#define BERTH_NSENTER_MAX_PAYLOAD (4 + BERTH_NSENTER_MAX_PATH)

/* Set in the final process only: the socket's fd, for the Go side. */
extern int berth_nsenter_fd;

#endif
