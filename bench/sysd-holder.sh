#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Holds the bench's private systemd (tests/sysd.sh) in a process of its own,
# so that one that cannot boot ends only this process:
#   sysd-holder.sh UNIT_DIR STATE_DIR PARENT_PID
# boots systemd with the units of UNIT_DIR (the source tree bound at
# /run/cgf-top, the build tree at /run/cgf-build), writes SD_PID and SD_CG to
# STATE_DIR/env, touches STATE_DIR/ready, and tears it all down once
# STATE_DIR/stop exists or PARENT_PID has gone.  Exit 77 (SKIP) when this
# machine cannot run it, 1 when the boot failed: the reason is on stdout.
T_NO_CHECKS_OK=1
. "$(dirname "$0")/../tests/lib.sh"
. "$(dirname "$0")/../tests/sysd.sh"
[ $# -eq 3 ] || fail "usage: sysd-holder.sh UNIT_DIR STATE_DIR PARENT_PID"
state=$2 parent=$3
need_sysd
# the source and build trees, where the namespace sees them even when they
# are under the host's /tmp (private inside)
sd_boot --bind "$TOP" /run/cgf-top --bind "$BUILD" /run/cgf-build "$1"
printf 'SD_PID=%q\nSD_CG=%q\n' "$SD_PID" "$SD_CG" >"$state/env"
touch "$state/ready"
while [ ! -e "$state/stop" ] && kill -0 "$parent" 2>/dev/null; do
	sleep 0.1
done
