#!/usr/bin/env bash
# Verdict test: port-firewall's verdicts through BPF_PROG_TEST_RUN against an
# independent reference (tests/verdict/verdict.py): crafted packets for every
# parsing case plus random ones, the reference examples built through the
# real port-firewall/Makefile (and one loaded with make load), hand-written
# filters touching every field and some hundreds of random filters, batched.
#   CGF_SEED=N changes the random packets and filters (default 1).
. "$(dirname "$0")/lib.sh"

need_root
need_bpffs
need_cmd clang bpftool python3
RUNNER=$BUILD/tests/verdict-run
EXPR_TOOL=$BUILD/tools/cgfilter-expr
[ -x "$RUNNER" ] || fail "$RUNNER is not built (make tests)"
[ -x "$EXPR_TOOL" ] || fail "$EXPR_TOOL is not built (make tools)"
CHECK=(python3 "$TOP/tests/verdict/check_port_firewall.py")

make_tmpdir WORK
REF1='icmp || (udp && dst_port == 53) || (tcp && dst_port == 80)'
REF2='!udp || dst_port == 53'
PIN=/sys/fs/bpf/$T_ID-verdicts
at_exit rm -f "$PIN" "$PIN-loading"

# pf_build DIR FILTER: build port-firewall into DIR with the real Makefile
pf_build() {
	make -s -C "$TOP/port-firewall" O="$1" EXPR_TOOL="$EXPR_TOOL" FILTER="$2" >"$WORK/make.log" 2>&1 ||
		{ cat "$WORK/make.log" >&2; return 1; }
}
expect_ok "build port-firewall for '$REF1'" pf_build "$WORK/ref1" "$REF1"
expect_ok "build port-firewall for '$REF2'" pf_build "$WORK/ref2" "$REF2"
expect_ok "make load pins '$REF2'" \
	make -s -C "$TOP/port-firewall" O="$WORK/ref2" EXPR_TOOL="$EXPR_TOOL" FILTER="$REF2" PIN="$PIN" load
# a filter clang once knew to be 0 or 1, returned as is, so the verifier
# refused the program (regression)
expect_ok "build port-firewall for 'tcp_psh >> tcp_fin'" pf_build "$WORK/shift" 'tcp_psh >> tcp_fin'
expect_ok "verifier accepts 'tcp_psh >> tcp_fin'" \
	"${CHECK[@]}" --work "$WORK" --crafted-only --real "$WORK/shift/port_firewall.bpf.o" 'tcp_psh >> tcp_fin'

# the harness must notice a program that passes everything
expect_ok "build port-firewall for '1'" pf_build "$WORK/always" '1'
set +e
"${CHECK[@]}" --work "$WORK" --crafted-only --real "$WORK/always/port_firewall.bpf.o" "$REF1" \
	>"$WORK/always.log" 2>&1
rc=$?
set -e
[ $rc -eq 1 ] && grep -q 'verdict: reference 0, program 1' "$WORK/always.log" ||
	{ cat "$WORK/always.log" >&2; fail "an always-pass program was not caught (exit $rc)"; }
ok "an always-pass program labelled '$REF1' is caught"

expect_ok "verdicts agree with the reference" \
	"${CHECK[@]}" --work "$WORK" \
	--real "$WORK/ref1/port_firewall.bpf.o" "$REF1" \
	--real "$WORK/ref2/port_firewall.bpf.o" "$REF2" \
	--pin "$PIN" "$REF2" \
	--random-exprs "${CGF_RANDOM_EXPRS:-300}" --random-packets "${CGF_RANDOM_PACKETS:-200}"
