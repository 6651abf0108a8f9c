#!/usr/bin/env bash
# One vocabulary (lang/vocab.c) for both back ends: the man pages' lists of
# names are what it prints ('make vocab'); every name it holds is one that
# port-firewall's checker and cgfilter take, and that their help texts
# list; the addresses are cgfilter's only.  No root needed.
. "$(dirname "$0")/lib.sh"

need_cmd python3
EXPR=$BUILD/tools/cgfilter-expr
CGF=$BUILD/cgfilter/cgfilter
for p in "$EXPR" "$CGF"; do
	[ -x "$p" ] || fail "$p is not built (make)"
done
make_tmpdir W

python3 "$TOP/scripts/vocab.py" --check "$EXPR" "$TOP/man/port-firewall.8" "$TOP/man/cgfilter.8" ||
	fail "the man pages' lists of names are not the table's (run make vocab)"
ok "the man pages list the names of lang/vocab.c, as make vocab writes them"

"$EXPR" --vocab names >"$W/names"
"$EXPR" --vocab names --addresses >"$W/all"
expect_eq "22 names for port-firewall" "$(wc -l <"$W/names")" 22
expect_eq "... and src_ip, dst_ip, local_ip, remote_ip, exe for cgfilter" \
	"$(comm -13 <(sort "$W/names") <(sort "$W/all") | tr "\n" " ")" \
	"dst_ip exe local_ip remote_ip src_ip "
"$EXPR" --help >"$W/expr.help"
"$CGF" set --help >"$W/cgf.help"
while read -r n; do
	"$EXPR" --check "$n != 1" || fail "port-firewall's checker refuses the name $n"
	"$CGF" compile "$n != 1" >/dev/null || fail "cgfilter refuses the name $n"
	grep -qE "^  $n +[^ ]" "$W/expr.help" || fail "cgfilter-expr --help does not list $n"
	grep -qE "^  $n +[^ ]" "$W/cgf.help" || fail "cgfilter set --help does not list $n"
done <"$W/names"
make -s -C "$TOP/port-firewall" O="$BUILD/port-firewall" >/dev/null 2>"$W/usage" || true
tr -s ' \n' '\n\n' <"$W/usage" | sed -n '/^Names:$/,$p' | sed 1d | grep -v -e '^make:' -e '^\*\*\*' >"$W/usage.names" || true
while read -r n; do
	grep -qx "$n" "$W/usage.names" || fail "port-firewall's usage does not list $n: $(cat "$W/usage")"
done <"$W/names"
ok "each is taken by port-firewall's checker and cgfilter, and listed in both helps and port-firewall's usage"
for n in src_ip dst_ip local_ip remote_ip exe; do
	if [ "$n" = exe ]; then
		"$CGF" compile 'exe == "/bin/sh"' >/dev/null || fail "cgfilter refuses exe"
	else
		"$CGF" compile "$n == 10.0.0.1" >/dev/null || fail "cgfilter refuses $n"
	fi
	grep -qE "^  $n +[^ ]" "$W/cgf.help" || fail "cgfilter set --help does not list $n"
	rc=0
	"$EXPR" --check "$n == 1" 2>"$W/err" || rc=$?
	expect_eq "port-firewall refuses $n (cgfilter's only)" "$rc" 1
done
rc=0
"$EXPR" --check "tcp_cwr" 2>"$W/err" || rc=$?
expect_eq "a name not in the table is refused" "$rc:$(grep -c "unknown name 'tcp_cwr'" "$W/err")" 1:1
