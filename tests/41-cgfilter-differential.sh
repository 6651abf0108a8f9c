#!/usr/bin/env bash
# Differential test of the cgfilter engine (tests/verdict/check_cgfilter.py):
# port-firewall's test filters and 1000 random filters, over crafted and
# random packets: engine verdict = clang-built port-firewall verdict =
# reference evaluator.  CGF_SEED=N changes the random filters and packets.
. "$(dirname "$0")/lib.sh"

need_root
need_bpffs
need_cmd clang bpftool python3
CGF=$BUILD/cgfilter/cgfilter
for p in "$CGF" "$BUILD/tests/verdict-run" "$BUILD/tools/cgfilter-expr"; do
	[ -x "$p" ] || fail "$p is not built (make)"
done
make_tmpdir WORK
PIN=/sys/fs/bpf/${T_ID}_diff
at_exit rm -rf "$PIN" "${PIN}_maps"

if python3 "$TOP/tests/verdict/check_cgfilter.py" --work "$WORK" --pin "$PIN" --cgfilter "$CGF" \
	--random-exprs "${CGF_DIFF_EXPRS:-1000}"; then
	ok "engine, port-firewall and reference agree"
else
	fail "the engine disagrees (see above)"
fi
