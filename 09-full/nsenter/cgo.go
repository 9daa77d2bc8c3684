//go:build linux && cgo

package nsenter

// The C side is nsenter.c: importing this package links its constructor
// into the binary. cgo reads the wire format's constants from nsenter.h,
// the header both sides share.

/*
#cgo CFLAGS: -Wall -Wextra -O2
#include "nsenter.h"
*/
import "C"

const (
	envName     = C.BERTH_NSENTER_ENV
	version     = C.BERTH_NSENTER_VERSION
	maxPath     = C.BERTH_NSENTER_MAX_PATH
	maxPayload  = C.BERTH_NSENTER_MAX_PAYLOAD
	msgJoin     = C.BERTH_NSENTER_MSG_JOIN
	msgStart    = C.BERTH_NSENTER_MSG_START
	msgContinue = C.BERTH_NSENTER_MSG_CONTINUE
	msgLog      = C.BERTH_NSENTER_MSG_LOG
	msgError    = C.BERTH_NSENTER_MSG_ERROR
	msgPid      = C.BERTH_NSENTER_MSG_PID
)

// finalFd is the socket's descriptor in the final process, -1 elsewhere.
// The constructor set it before the Go runtime started.
func finalFd() int { return int(C.berth_nsenter_fd) }
