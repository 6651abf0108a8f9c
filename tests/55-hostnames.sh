#!/usr/bin/env bash
# Host names in address sets: resolved through /etc/hosts (a scratch file
# bind-mounted over it in a private mount namespace, with an nsswitch.conf
# of "hosts: files", so nothing asks DNS), in literal sets, declared sets
# and named sets (set-add, set-del); cgfilter refresh (--force, and after
# the lifetime) puts the new addresses in force; a name that does not
# resolve is refused at set and changes nothing; one gone at refresh keeps
# its addresses with a warning; the back ends that cannot re-resolve refuse;
# refresh killed (or given an error) at each of its bpf() calls leaves each
# filter and set old or new, whole, as shown.
# The verdicts (BPF_PROG_TEST_RUN) are judged from the addresses this test
# wrote in its hosts file.
. "$(dirname "$0")/lib.sh"

need_root
need_cgroup2
need_bpffs
need_cmd unshare python3 strace ip
# (python itself, not a wrapper that finds it: a version manager's shim
# takes a third of a second a run, and the refresh sweep runs it 2,000 times)
PY=$(python3 -c 'import sys; print(sys.executable)')
CGF=$BUILD/cgfilter/cgfilter
for p in "$CGF" "$BUILD/tests/verdict-run"; do
	[ -x "$p" ] || fail "$p is not built (make)"
done
make_tmpdir TMP
DIR=/sys/fs/bpf/${T_ID}
PIN=$DIR/hn
clean() { "$CGF" unload "$PIN" >/dev/null 2>&1 || true; rm -rf "$DIR"; }
at_exit clean

# cgf ARGS...: cgfilter with $TMP/hosts as /etc/hosts (and files only)
printf 'hosts: files\n' >"$TMP/nsswitch.conf"
cgf() {
	unshare -m -- sh -c 'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/nsswitch.conf &&
		shift 2 && exec "$@"' sh "$TMP/hosts" "$TMP/nsswitch.conf" "$CGF" "$@"
}
hosts() { printf '%s\n' "127.0.0.1 localhost" "$@" >"$TMP/hosts"; }

# the packets: TCP to port 80 of each of these destinations
DSTS=(198.51.100.10 198.51.100.11 198.51.100.20 192.0.2.5 2001:db8::10 2001:db8::11
	203.0.113.5 203.0.113.7 203.0.113.8 203.0.113.9)
specs=()
for d in "${DSTS[@]}"; do
	if [[ $d == *:* ]]; then specs+=("ip6 dst=$d / tcp dport=80"); else specs+=("ip4 dst=$d / tcp dport=80"); fi
done
"$PY" "$TOP/tests/verdict/judge.py" --cgfilter "$CGF" --pin "$PIN" --frames "$TMP/frames" "${specs[@]}" ||
	fail "cannot write the frames"
verdicts() { "$BUILD/tests/verdict-run" -p "$TMP/frames" --pin "$PIN" | cut -f3; }
# reference ADDR...: the verdicts of 'dst_ip in { ADDR... }' (exact addresses
# and 192.0.2.0/24) on the packets above
reference() {
	"$PY" - "$@" <<'EOF'
import ipaddress, sys
dsts = "198.51.100.10 198.51.100.11 198.51.100.20 192.0.2.5 2001:db8::10 2001:db8::11 203.0.113.5 203.0.113.7 203.0.113.8 203.0.113.9".split()
nets = [ipaddress.ip_network(a) for a in sys.argv[1:]]
print("".join("1" if any(ipaddress.ip_address(d) in n for n in nets) else "0" for d in dsts))
EOF
}
# names JSON-PATH: the host names show --json gives, "name=addr,addr ..."
shown_names() {
	"$CGF" show --json "$PIN" | "$PY" -c '
import json, sys
j = json.load(sys.stdin)
src = j if sys.argv[1] == "filter" else j["sets"][sys.argv[1]]
print(" ".join("%s=%s" % (n["name"], ",".join(n["addresses"])) for n in src.get("names", [])))' "$1"
}

# state: show --json without counters and the seconds left
state() {
	"$CGF" show --json "$PIN" | "$PY" -c '
import json, sys
j = json.load(sys.stdin)
for n in j.get("names", []):
    n.pop("expires_in")
print(j["filter_program_id"], j["filter"], json.dumps(j.get("names")), json.dumps(j["sets"]))'
}

# ---- grammar: where names are refused --------------------------------------------
hosts "198.51.100.10 web.cgft"
expect_status "compile refuses a host name (nothing there resolves it again)" 1 \
	"'web.cgft' is a host name: only a cgfilter engine resolves host names" \
	cgf compile 'dst_ip in { web.cgft }'
expect_status "compile --classic (cgfilter wrap) refuses it too" 1 \
	"'web.cgft' is a host name" cgf compile --classic 'dst_ip in { web.cgft }'
expect_status "cgfilter wrap refuses it" 1 "'web.cgft' is a host name" \
	cgf wrap --listen 127.0.0.1:0/udp 'src_ip in { web.cgft }' -- true
expect_status "a name that is a field is refused, with the way to write it" 1 \
	"'tcp' is a name of the language: write the host as 'tcp.'" \
	cgf load "$PIN" 'dst_ip in { tcp }'
expect_status "a bad name is refused" 1 "bad host name 'a..b'" cgf load "$PIN" 'dst_ip in { a..b }'
# getaddrinfo() would read these as inet_aton() does: 127.0.0.1 and 10.0.0.1
expect_status "an old-style number is not a host name" 1 \
	"'012.0.0.0x1' is not a host name (its last label does not start with a letter)" \
	cgf load "$PIN" 'dst_ip in { 012.0.0.0x1 }'
expect_status "... nor a hex one" 1 "bad address '0x7f.1'" cgf load "$PIN" 'dst_ip in { 0x7f.1 }'
[ ! -e "$PIN" ] || fail "a refused load pinned something"
ok "refused loads pin nothing"

# ---- a literal set: load, refresh --force, lifetime ---------------------------------
hosts "198.51.100.10 web.cgft" "2001:db8::10 web.cgft"
expect_ok "load with a host name in a literal set" cgf load "$PIN" 'dst_ip in { web.cgft, 192.0.2.0/24 }'
expect_eq "verdicts follow the hosts file" "$(verdicts)" \
	"$(reference 198.51.100.10/32 2001:db8::10/128 192.0.2.0/24)"
expect_eq "show --json lists the name with both addresses" "$(shown_names filter)" \
	"web.cgft=198.51.100.10,2001:db8::10"
"$CGF" show "$PIN" | has '^    web.cgft: 198.51.100.10, 2001:db8::10 (resolved again in [0-9]* s)$' ||
	fail "show does not list the name: $("$CGF" show "$PIN")"
ok "show lists the name, its addresses and when it is resolved again"
G1=$(state)

hosts "198.51.100.20 web.cgft"
expect_ok "refresh before the lifetime" cgf refresh "$PIN"
expect_eq "changes nothing" "$(state)" "$G1"
expect_ok "refresh --force" cgf refresh --force "$PIN"
expect_eq "puts the new address in force" "$(verdicts)" "$(reference 198.51.100.20/32 192.0.2.0/24)"
expect_eq "and show says so" "$(shown_names filter)" "web.cgft=198.51.100.20"

# the lifetime, short for the test: refresh without --force once it passed
hosts "198.51.100.10 web.cgft"
CGFILTER_NAME_LIFETIME=1 expect_ok "set with a 1 s lifetime" \
	cgf set "$PIN" 'dst_ip in { web.cgft, 192.0.2.0/24 }'
hosts "198.51.100.11 web.cgft"
sleep 2
expect_ok "refresh after the lifetime" cgf refresh "$PIN"
expect_eq "resolves the name again" "$(verdicts)" "$(reference 198.51.100.11/32 192.0.2.0/24)"

# modes rebuild the filter with the addresses it has, resolving nothing
hosts "198.51.100.10 web.cgft"
expect_ok "observe mode" cgf mode "$PIN" observe
expect_ok "enforce mode" cgf mode "$PIN" enforce
expect_eq "a mode change keeps the addresses" "$(shown_names filter)" "web.cgft=198.51.100.11"

# ---- failures -----------------------------------------------------------------------
G2=$(state)
expect_status "set refuses a name that does not resolve" 1 \
	"cannot resolve host name 'nosuch.cgft': " cgf set "$PIN" 'dst_ip in { nosuch.cgft }'
expect_eq "and changes nothing" "$(state)" "$G2"
hosts
expect_status "refresh with the name gone: exit 0 and a warning" 0 \
	"cannot resolve host name 'web.cgft'" cgf refresh --force "$PIN"
cgf refresh --force "$PIN" 2>&1 | has "web.cgft keeps its last addresses" ||
	fail "the warning does not say the name keeps its addresses"
expect_eq "the name keeps its last addresses" "$(verdicts)" "$(reference 198.51.100.11/32 192.0.2.0/24)"
expect_status "set-add refuses a name that does not resolve" 1 \
	"cannot resolve host name 'nosuch.cgft'" cgf set-add "$PIN" @repos nosuch.cgft
[ ! -e "${PIN}_maps/set_repos" ] || fail "a refused set-add made the set"
ok "a refused set-add makes nothing"

# ---- named sets ------------------------------------------------------------------------
hosts "203.0.113.7 repo.cgft" "203.0.113.5 repo.cgft" "203.0.113.9 mirror.cgft"
expect_ok "set-add a name and an address (also one of the name's)" \
	cgf set-add "$PIN" @repos repo.cgft 203.0.113.5
expect_ok "set a filter using the set" cgf set "$PIN" 'dst_ip in @repos'
expect_eq "the set holds the name's addresses" "$(verdicts)" "$(reference 203.0.113.5/32 203.0.113.7/32)"
expect_eq "show --json lists the name in the set" "$(shown_names repos)" "repo.cgft=203.0.113.5,203.0.113.7"
expect_status "set-del of an address added by itself and given by a name: it stays, and says so" 0 \
	"203.0.113.5 stays in the set while a host name in it has that address" cgf set-del "$PIN" @repos 203.0.113.5
expect_eq "... it does" "$(verdicts)" "$(reference 203.0.113.5/32 203.0.113.7/32)"
expect_ok "set-add it by itself again" cgf set-add "$PIN" @repos 203.0.113.5
hosts "203.0.113.8 repo.cgft" "203.0.113.9 mirror.cgft"
expect_ok "refresh --force" cgf refresh --force "$PIN"
expect_eq "the set follows; the address added by itself stays" "$(verdicts)" \
	"$(reference 203.0.113.5/32 203.0.113.8/32)"
hosts "203.0.113.9 repo.cgft" "203.0.113.9 mirror.cgft"
expect_ok "set-add another name" cgf set-add "$PIN" @repos mirror.cgft
expect_ok "refresh --force" cgf refresh --force "$PIN"
expect_eq "both names give 203.0.113.9" "$(shown_names repos)" "repo.cgft=203.0.113.9 mirror.cgft=203.0.113.9"
expect_ok "set-del a name, written in other case and with a trailing dot" cgf set-del "$PIN" @repos Repo.CGFT.
expect_eq "its address stays while another name has it" "$(verdicts)" \
	"$(reference 203.0.113.5/32 203.0.113.9/32)"
expect_ok "set-del the other" cgf set-del "$PIN" @repos mirror.cgft
expect_eq "now it goes; the address added by itself stays" "$(verdicts)" "$(reference 203.0.113.5/32)"
expect_eq "no names left" "$(shown_names repos)" ""

# refresh leaves alone a filter that judges no address (block, pass): it
# would be rebuilt on every run of the timer
hosts "198.51.100.10 web.cgft"
expect_ok "set a filter with a name" cgf set "$PIN" 'dst_ip in { web.cgft }'
expect_ok "block mode" cgf mode "$PIN" block
gen() { "$CGF" show --json "$PIN" | grep -o '"generation":[0-9]*'; }
g0=$(gen)
expect_ok "refresh --force in block mode" cgf refresh --force "$PIN"
expect_eq "refresh rebuilt nothing in block mode" "$(gen)" "$g0"
expect_ok "enforce again" cgf mode "$PIN" enforce
expect_eq "... which judges by the name's addresses" "$(verdicts)" "$(reference 198.51.100.10/32)"

# a declaration's names are the set's own
hosts "198.51.100.10 web.cgft"
expect_ok "set with a declared set naming a host" cgf set "$PIN" '@d = { web.cgft } dst_ip in @d'
expect_eq "its verdicts" "$(verdicts)" "$(reference 198.51.100.10/32)"
expect_eq "the set lists the name" "$(shown_names d)" "web.cgft=198.51.100.10"
hosts "198.51.100.20 web.cgft"
expect_ok "refresh DIR: every engine under it" cgf refresh --force "$DIR"
expect_eq "the declared set follows" "$(verdicts)" "$(reference 198.51.100.20/32)"

# ---- a trailing dot writes a host whose name is a field's ------------------------------
hosts "198.51.100.10 tcp"
expect_ok "'tcp.' names the host tcp (and == takes a host name)" cgf set "$PIN" 'dst_ip == tcp. || dst_ip in { 192.0.2.0/24 }'
expect_eq "its verdicts" "$(verdicts)" "$(reference 198.51.100.10/32 192.0.2.0/24)"

# ---- a DNS answer's TTL is the lifetime ------------------------------------------------
# a DNS server of the test's own on 127.0.0.1 of a network namespace of its
# own: dns.cgft has 198.51.100.20 with a TTL of 7 s (no AAAA)
cat >"$TMP/dns.py" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
open(sys.argv[1], "w").write("ready\n")
while True:
    q, peer = s.recvfrom(512)
    i, labels = 12, []
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode())
        i += q[i] + 1
    qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
    name = ".".join(labels).lower()
    ans, rcode = b"", 0 if name == "dns.cgft" else 3
    if name == "dns.cgft" and qtype == 1:
        ans = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 7, 4) + socket.inet_aton("198.51.100.20")
    hdr = q[:2] + struct.pack(">HHHHH", 0x8180 | rcode, 1, 1 if ans else 0, 0, 0)
    s.sendto(hdr + q[12:i + 5] + ans, peer)
PY
printf 'hosts: files dns\n' >"$TMP/nss-dns"
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"$TMP/resolv.conf"
dns_cgf() {
	env -u CGFILTER_NAME_LIFETIME unshare -m -n -- sh -c '
		ip link set lo up && mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/nsswitch.conf &&
			mount --bind "$3" /etc/resolv.conf || exit 1
		python3 "$4" "$5" & pid=$!
		for _ in $(seq 50); do [ -s "$5" ] && break; sleep 0.1; done
		shift 5; "$@"; rc=$?; kill $pid; wait $pid 2>/dev/null; exit $rc' \
		sh "$TMP/hosts" "$TMP/nss-dns" "$TMP/resolv.conf" "$TMP/dns.py" "$TMP/dns.ready" "$CGF" "$@"
}
expires_in() { "$CGF" show --json "$PIN" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["names"][0]["expires_in"])'; }
hosts "198.51.100.10 web.cgft"
expect_ok "a name from the hosts file" cgf set "$PIN" 'dst_ip in { web.cgft }'
e=$(expires_in)
[ "$e" -ge 290 ] && [ "$e" -le 300 ] || fail "a name from the hosts file expires in $e s, not 300"
ok "... holds for the default lifetime, 300 s"
expect_ok "a name from DNS" dns_cgf set "$PIN" 'dst_ip in { dns.cgft }'
expect_eq "its verdicts" "$(verdicts)" "$(reference 198.51.100.20/32)"
e=$(expires_in)
[ "$e" -ge 1 ] && [ "$e" -le 7 ] || fail "a name with a TTL of 7 s expires in $e s"
ok "... holds for its DNS TTL, 7 s"

# ---- a shared engine: each cgroup's filter refreshed -----------------------------------
# (its filters live in cgroup storage, which BPF_PROG_TEST_RUN does not
# reach: what show says of the cgroup's program)
SH=$DIR/shared
CG=$CG2/$T_ID-hn
make_cgroup "$CG"
at_exit "$CGF" unload --detach "$SH"
hosts "198.51.100.10 web.cgft"
expect_ok "a shared engine" cgf load --shared "$SH"
expect_ok "attached to a cgroup" cgf attach "$SH" "$CG" egress
expect_ok "register a filter with a host name" cgf register "$SH" --cgroup "$CG" 'dst_ip in { web.cgft }'
cg_names() {
	"$CGF" show --json "$SH" | "$PY" -c '
import json, sys
print(" ".join("%s=%s" % (n["name"], ",".join(n["addresses"])) for f in json.load(sys.stdin)["filters"] for n in f.get("names", [])))'
}
expect_eq "show lists the cgroup's names" "$(cg_names)" "web.cgft=198.51.100.10"
hosts "198.51.100.20 web.cgft"
expect_ok "refresh --force the shared engine" cgf refresh --force "$SH"
expect_eq "the cgroup's filter has the new address" "$(cg_names)" "web.cgft=198.51.100.20"
expect_ok "unload it" "$CGF" unload --detach "$SH"

# ---- refresh killed (or failing) at each of its bpf() calls -----------------------------
# the filter's names and the set's are each old or new, whole, as shown, and
# the verdicts are those of the addresses shown; the refresh again is right
cgfx() { # CMD...: run in the namespace with the scratch hosts file
	unshare -m -- sh -c 'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/nsswitch.conf &&
		shift 2 && exec "$@"' sh "$TMP/hosts" "$TMP/nsswitch.conf" "$@"
}
crash_setup() {
	clean
	hosts "198.51.100.10 web.cgft" "203.0.113.7 repo.cgft"
	cgf load "$PIN" '@repos = { repo.cgft } dst_ip in { web.cgft } || dst_ip in @repos' ||
		fail "cannot load"
	hosts "198.51.100.20 web.cgft" "203.0.113.8 repo.cgft"
}
crash_check() { # WHAT RC HOW
	local f s want
	f=$(shown_names filter) && s=$(shown_names repos) || fail "$1: show fails"
	case $f in
	web.cgft=198.51.100.10) want="198.51.100.10/32" ;;
	web.cgft=198.51.100.20) want="198.51.100.20/32" ;;
	*) fail "$1: the filter's names are neither old nor new: $f" ;;
	esac
	case $s in
	repo.cgft=203.0.113.7) want="$want 203.0.113.7/32" ;;
	repo.cgft=203.0.113.8) want="$want 203.0.113.8/32" ;;
	*) fail "$1: the set's names are neither old nor new: $s" ;;
	esac
	if [ "$2" -eq 0 ] && [ "$3" != signal=SIGKILL ]; then
		[ "$want" = "198.51.100.20/32 203.0.113.8/32" ] || fail "$1: exit 0, but not all new: $f $s"
	fi
	# shellcheck disable=SC2086
	[ "$(verdicts)" = "$(reference $want)" ] || fail "$1: shows $f $s, but the verdicts are $(verdicts)"
}
crash_setup
cgfx strace -f -qq -e trace=bpf -o "$TMP/trace" "$CGF" refresh --force "$PIN" >/dev/null 2>&1 ||
	fail "refresh under strace failed"
total=$(grep -c 'bpf(' "$TMP/trace")
[ "$total" -gt 3 ] || fail "refresh made only $total bpf() calls"
for how in signal=SIGKILL error=ENOSPC; do
	for ((n = 1; n <= total; n++)); do
		crash_setup
		rc=0
		(
			cgfx strace -f -qq -o /dev/null -e trace=bpf -e "inject=bpf:$how:when=$n" \
				"$CGF" refresh --force "$PIN" >"$TMP/out" 2>"$TMP/err"
			exit $?
		) 2>/dev/null || rc=$?
		if [ "$how" = error=ENOSPC ] && [ $rc -ne 0 ] && [ ! -s "$TMP/err" ]; then
			fail "refresh: ENOSPC at bpf() call $n: exit $rc without a message"
		fi
		crash_check "refresh, $how at bpf() call $n of $total (exit $rc: $(head -c 200 "$TMP/err"))" "$rc" "$how"
		cgf refresh --force "$PIN" >/dev/null 2>"$TMP/err2" ||
			fail "refresh: after $how at call $n, refresh again failed: $(cat "$TMP/err2")"
		crash_check "refresh again after $how at call $n" 0 none
		[ "$(shown_names filter) $(shown_names repos)" = "web.cgft=198.51.100.20 repo.cgft=203.0.113.8" ] ||
			fail "refresh again after $how at call $n: not all new"
	done
	ok "refresh: $how at each of its $total bpf() calls: each filter and set old or new, whole, as shown"
done
