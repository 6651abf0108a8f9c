#!/usr/bin/env bash
# Differential test of the cgfilter engine (tests/verdict/check_cgfilter.py):
# port-firewall's test filters and 1000 random filters, over crafted and
# random packets: engine verdict = clang-built port-firewall verdict =
# reference evaluator.  CGF_SEED=N changes the random filters and packets.
# Also the fields the entry program hands to filters, dedicated and shared
# (tests/verdict/check_fields.py): the reference's, for every packet.
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
at_exit rm -rf "$PIN" "${PIN}_maps" "${PIN}_f" "${PIN}_f_maps" "${PIN}_s" "${PIN}_s_maps"

if python3 "$TOP/tests/verdict/check_cgfilter.py" --work "$WORK" --pin "$PIN" --cgfilter "$CGF" \
	--random-exprs "${CGF_DIFF_EXPRS:-1000}"; then
	ok "engine, port-firewall and reference agree"
else
	fail "the engine disagrees (see above)"
fi

"$CGF" load "${PIN}_f" 1 >/dev/null || fail "cgfilter load ${PIN}_f 1 failed"
"$CGF" load --shared "${PIN}_s" >/dev/null || fail "cgfilter load --shared ${PIN}_s failed"
if python3 "$TOP/tests/verdict/check_fields.py" --pin "${PIN}_f" &&
	python3 "$TOP/tests/verdict/check_fields.py" --shared --pin "${PIN}_s"; then
	ok "the entry program's fields are the reference's (dedicated and shared)"
else
	fail "the entry program's fields differ from the reference's (see above)"
fi
