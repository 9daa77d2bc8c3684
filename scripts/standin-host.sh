#!/usr/bin/env bash
# Runs a command inside a new network namespace that stands in for the host:
# only lo, up, and no route anywhere else. make test runs the whole suite in
# one, so that no test, however wrong (a bridge torn down halfway, a
# container address routed out of the default route), can send a packet off
# this machine. Without root there are no network tests to protect, and the
# command runs as it is.
#
#   scripts/standin-host.sh COMMAND [ARG...]
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
	exec "$@"
fi
exec unshare --net -- bash -c 'ip link set lo up && exec "$@"' standin-host "$@"
