# SPDX-License-Identifier: GPL-2.0-only
# Nothing dies silently: sourced by every bash script of the project (the
# tests through tests/lib.sh, the demo, the bench, the install scripts, CI).
# When a command fails and `set -e` is about to end the script, this says
# which command, in which file and line, and who called that function:
#
#   error: tests/sysd.sh:163 in sd_boot (from tests/42-cgfilter-systemd.sh:30): exit 1: pid=$(ps ...)
#
# The line goes to stderr and, when T_REASON names a file (tests/run.sh sets
# it), is appended there too, so that the runner can show it next to FAIL.
# A failure inside a subshell is reported there (on stderr only) and again
# where the subshell itself fails.

set -o errtrace

# _cgf_where N: "FILE:LINE in FUNC (from FILE:LINE)": where the caller of
# _cgf_where's caller is now, for N=1 (N=0: where the caller itself is).
_cgf_where() {
	local f=$(($1 + 1)) top=${CGF_TOP:-} src fn w
	src=${BASH_SOURCE[f]:-?}
	[ -n "$top" ] && src=${src#"$top"/}
	w="$src:${BASH_LINENO[f - 1]:-?}"
	fn=${FUNCNAME[f]:-}
	if [ -n "$fn" ] && [ "$fn" != main ] && [ "$fn" != source ] && [ -n "${BASH_SOURCE[f + 1]:-}" ]; then
		src=${BASH_SOURCE[f + 1]}
		[ -n "$top" ] && src=${src#"$top"/}
		w+=" in $fn (from $src:${BASH_LINENO[f]})"
	fi
	printf '%s' "$w"
}

_cgf_on_err() {
	local rc=$1 cmd=$2 msg
	# bash runs the ERR trap even under `set +e`, where a failure is
	# expected and handled by the script
	[[ $- == *e* ]] || return 0
	# the frame of the failing command is the caller of this function
	msg="error: $(_cgf_where 1): exit $rc: ${cmd:0:300}"
	[ "${BASH_SUBSHELL:-0}" -eq 0 ] || msg+=" (in a subshell)"
	printf '%s\n' "$msg" >&2
	# the reason file gets what the script itself failed on, not what
	# failed inside a $(...) first (for a pipeline, that is only its last
	# command)
	if [ -n "${T_REASON:-}" ] && [ "${BASH_SUBSHELL:-0}" -eq 0 ]; then
		printf '%s\n' "$msg" >>"$T_REASON" 2>/dev/null || true
	fi
	return 0
}
trap '_cgf_on_err $? "$BASH_COMMAND"' ERR
