# A private systemd for tests: systemd runs as PID 1 of its own PID, mount,
# cgroup and UTS namespaces, sees only the units the test hands it, and
# disappears with everything it started when the test ends.  Source it after
# lib.sh:
#
#   . "$(dirname "$0")/lib.sh"
#   . "$(dirname "$0")/sysd.sh"
#   need_sysd                          # skips unless root, cgroup2, systemd
#   sd_boot [--bind SRC DST]... [--unit-path DIR]... [UNIT_FILE_OR_DIR...]
#   sd_ctl start foo.service           # systemctl inside
#   sd_run --wait --pipe -p IPIngressFilterPath=/sys/fs/bpf/x CMD...
#   sd_exec cat /run/foo.log           # any command inside
#   sd_write /run/systemd/system/foo.service.d/x.conf <<<"$dropin"
#   sd_result foo.service              # its Result=: success, resources...
#   sd_journal foo.service             # its journal, for diagnostics
#   sd_pid                             # systemd's PID on the host
#
# What the namespace sees:
#   /run, /tmp, /var/tmp    fresh tmpfs (so systemd empties nothing of ours)
#   /sys/fs/cgroup          cgroup2, rooted at the host cgroup $SD_CG
#   /sys/fs/bpf             a fresh, empty bpffs: pins vanish with systemd
#   /run/systemd/system     the units given to sd_boot (write drop-ins here,
#                           then `sd_ctl daemon-reload`; see sd_write)
#   DST of each --bind      SRC from the host (DST must exist inside and may
#                           not be under /tmp or /var/tmp; under /run it is
#                           created)
#   everything else         the host's files (the network is the host's too)
#
# --unit-path DIR adds DIR (as seen inside, e.g. a --bind DST) to systemd's
# unit search path, after /run/systemd/system, like /usr/local/lib/systemd/
# system on a real system.
#
# systemd reads units only from /run/systemd/system (and --unit-path
# directories) and a minimal private base (sysinit.target and friends, dbus,
# journald with volatile storage): the host's unit directories are not on its search path, so starting a
# service never pulls in the host's sysinit.target.wants (sysctl, kernel
# modules, binfmt, utmp, the persistent journal...) and nothing the host has
# enabled runs.  The network namespace is shared: use ports 22000-22999 and
# loopback only.
#
# Teardown is registered with at_exit: systemd is SIGKILLed (it re-executes
# on SIGTERM), the cgroup is emptied with cgroup.kill and removed; the
# namespaces, their mounts and the private bpffs go with the last process.
#
# Variables after sd_boot: SD_PID (systemd as the host sees it), SD_CG (its
# host cgroup), SD_DIR (a host scratch directory: systemd's console log is
# $SD_DIR/systemd.log).  SD_TIMEOUT (seconds, default 90) bounds the boot;
# SD_START_DELAY (seconds, default 0) delays the start, as a slow machine.

SD_PID=
SD_CG=
SD_DIR=
SD_LAUNCHER=
SD_DBUS=
SD_TIMEOUT=${SD_TIMEOUT:-90}
# seconds the launcher waits before it starts the namespaces: 0, or more to
# play a slow machine (tests/01-harness.sh does)
SD_START_DELAY=${SD_START_DELAY:-0}
SD_SYSTEMD=${SD_SYSTEMD:-/lib/systemd/systemd}
# host units the private base borrows (copied, resolved through symlinks)
SD_BASE_UNITS=(dbus.socket dbus.service systemd-journald.socket systemd-journald.service)
# targets that default dependencies name; written empty
SD_BASE_TARGETS=(sysinit.target basic.target sockets.target paths.target timers.target
	slices.target local-fs.target local-fs-pre.target network.target network-pre.target
	network-online.target nss-lookup.target time-set.target multi-user.target)

# need_sysd: skip the test unless a private systemd can be booted here.
need_sysd() {
	need_root
	need_cgroup2
	need_cmd unshare nsenter systemctl systemd-run
	[ -x "$SD_SYSTEMD" ] || skip "systemd is not installed ($SD_SYSTEMD)"
	local u
	for u in dbus.socket dbus.service; do
		_sd_find_unit "$u" >/dev/null || skip "$u is not installed (apt-get install dbus)"
	done
}

_sd_find_unit() {
	local d
	for d in /etc/systemd/system /lib/systemd/system /usr/lib/systemd/system; do
		[ -e "$d/$1" ] && { echo "$d/$1"; return 0; }
	done
	return 1
}

# sd_boot [--bind SRC DST]... [--unit-path DIR]... [UNIT_FILE_OR_DIR...]: start systemd in fresh
# namespaces with these units (files, or directories whose contents are
# copied, drop-in folders included) in /run/systemd/system, and wait until
# it is running (degraded is accepted).  Fails the test if it does not come
# up within SD_TIMEOUT seconds.  One systemd per test.
sd_boot() {
	local binds=() units=() upath=/run/systemd/system u n
	[ -z "$SD_PID" ] || fail "sd_boot: a systemd is already running ($SD_PID)"
	while [ $# -gt 0 ]; do
		case $1 in
		--bind)
			[ $# -ge 3 ] || fail "sd_boot: --bind needs SRC and DST"
			[ -e "$2" ] || fail "sd_boot: cannot bind $2: no such file or directory"
			case $3 in /tmp | /tmp/* | /var/tmp | /var/tmp/*)
				fail "sd_boot: cannot bind onto $3: /tmp and /var/tmp are private tmpfs" ;;
			esac
			binds+=("$(cd "$2" && pwd)" "$3"); shift 3 ;;
		--unit-path)
			[ $# -ge 2 ] || fail "sd_boot: --unit-path needs DIR"
			upath=$upath:$2; shift 2 ;;
		*) units+=("$1"); shift ;;
		esac
	done

	SD_DIR=$(mktemp -d "/tmp/$T_ID-sd.XXXXXX")
	at_exit rm -rf "$SD_DIR"
	mkdir -p "$SD_DIR/units" "$SD_DIR/base/journald.conf.d"

	# units for /run/systemd/system
	printf '[Unit]\nDescription=cgfilter test boot target\nWants=systemd-journald.socket systemd-journald.service\n' \
		>"$SD_DIR/units/cgf-test.target"
	for u in "${units[@]}"; do
		if [ -d "$u" ]; then
			cp -a "$u/." "$SD_DIR/units/" || fail "sd_boot: cannot copy units from $u"
		else
			cp "$u" "$SD_DIR/units/" || fail "sd_boot: cannot copy unit $u"
		fi
	done
	# the private base
	mkdir -p "$SD_DIR/base/units"
	for u in "${SD_BASE_UNITS[@]}"; do
		n=$(_sd_find_unit "$u") && cp -L "$n" "$SD_DIR/base/units/$u"
	done
	for u in "${SD_BASE_TARGETS[@]}"; do
		printf '[Unit]\nDescription=%s (cgfilter test, empty)\n' "$u" >"$SD_DIR/base/units/$u"
	done
	printf '[Unit]\nDescription=shutdown.target (cgfilter test, empty)\nDefaultDependencies=no\n' \
		>"$SD_DIR/base/units/shutdown.target"
	printf '[Journal]\nStorage=volatile\n' >"$SD_DIR/base/journald.conf.d/zz-cgf-test.conf"

	# what runs as PID 1 of the new namespaces before it becomes systemd
	{
		echo 'set -e'
		echo 'mount --make-rprivate /'
		echo 'mount -t tmpfs -o mode=755 tmpfs /run'
		echo 'mkdir -p /run/systemd/system /run/cgf-sd/units /run/systemd/journald.conf.d'
		printf 'cp -a %q/units/. /run/systemd/system/\n' "$SD_DIR"
		printf 'cp -a %q/base/units/. /run/cgf-sd/units/\n' "$SD_DIR"
		printf 'cp -a %q/base/journald.conf.d/. /run/systemd/journald.conf.d/\n' "$SD_DIR"
		for ((n = 0; n < ${#binds[@]}; n += 2)); do
			case ${binds[n + 1]} in /run/*) printf 'mkdir -p %q\n' "${binds[n + 1]}" ;; esac
			printf 'mount --bind %q %q\n' "${binds[n]}" "${binds[n + 1]}"
		done
		echo 'mount -t tmpfs -o mode=1777 tmpfs /tmp'
		echo 'mount -t tmpfs -o mode=1777 tmpfs /var/tmp'
		echo 'mount -t cgroup2 cgroup2 /sys/fs/cgroup'
		echo 'mount -t bpf -o mode=700 bpf /sys/fs/bpf'
		printf 'export container=%q\n' "$T_ID"
		printf 'export SYSTEMD_UNIT_PATH=%q\n' "$upath:/run/cgf-sd/units"
		printf 'exec %q --system --unit=cgf-test.target\n' "$SD_SYSTEMD"
	} >"$SD_DIR/boot.sh"

	SD_CG=$CG2/$T_ID-sd
	make_cgroup "$SD_CG"
	at_exit sd_stop
	# the launcher joins the cgroup first, so all systemd creates is inside
	(
		echo "$BASHPID" >"$SD_CG/cgroup.procs" || exit 1
		# a builtin wait (read on an empty FIFO): no child process, as on a
		# slow machine where unshare has not forked yet
		[ "$SD_START_DELAY" = 0 ] || { mkfifo "$SD_DIR/delay" && read -r -t "$SD_START_DELAY" _ <>"$SD_DIR/delay" || true; }
		exec unshare --cgroup --pid --fork --mount --mount-proc --uts \
			bash "$SD_DIR/boot.sh" </dev/null >"$SD_DIR/systemd.log" 2>&1
	) &
	SD_LAUNCHER=$!

	# find systemd: the launcher's child, once it has forked and exec'ed
	# (on a slow machine the launcher may not have forked yet: no child is
	# an answer to wait on, not an error)
	local deadline=$((SECONDS + SD_TIMEOUT)) pid state
	while :; do
		pid=$(cat "/proc/$SD_LAUNCHER/task/$SD_LAUNCHER/children" 2>/dev/null || true)
		pid=${pid%% *}
		if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = systemd ]; then
			SD_PID=$pid
			break
		fi
		kill -0 "$SD_LAUNCHER" 2>/dev/null || _sd_boot_failed "the namespace did not start"
		[ $SECONDS -lt $deadline ] || _sd_boot_failed "systemd did not start within ${SD_TIMEOUT}s"
		sleep 0.05
	done
	# then wait for its private socket and the end of its start-up jobs
	while :; do
		if sd_exec test -S /run/systemd/private 2>/dev/null; then
			state=$(sd_exec timeout 5 systemctl is-system-running --wait 2>/dev/null || true)
			case $state in running | degraded) break ;; esac
		fi
		kill -0 "$SD_PID" 2>/dev/null || _sd_boot_failed "systemd died"
		[ $SECONDS -lt $deadline ] ||
			_sd_boot_failed "systemd is not running after ${SD_TIMEOUT}s (state: ${state:-no socket})"
		sleep 0.1
	done
}

_sd_boot_failed() {
	echo "systemd's log:" >&2
	sed 's/^/    /' "$SD_DIR/systemd.log" >&2 2>/dev/null
	fail "sd_boot: $1"
}

# sd_stop: tear the namespace down (registered by sd_boot; safe to repeat).
sd_stop() {
	[ -n "$SD_CG" ] || return 0
	[ -n "$SD_PID" ] && kill -9 "$SD_PID" 2>/dev/null
	[ -e "$SD_CG/cgroup.kill" ] && echo 1 >"$SD_CG/cgroup.kill" 2>/dev/null
	[ -n "$SD_LAUNCHER" ] && wait "$SD_LAUNCHER" 2>/dev/null
	rm_cgroup "$SD_CG"
	SD_PID='' SD_LAUNCHER='' SD_DBUS=''
}

# sd_pid: systemd's PID as the host sees it.
sd_pid() { echo "$SD_PID"; }

# sd_exec CMD...: run CMD inside the namespaces (as root, cwd /), with this
# shell's stdin, stdout and stderr.
sd_exec() {
	[ -n "$SD_PID" ] || fail "sd_exec: no systemd (call sd_boot first)"
	nsenter -t "$SD_PID" -m -p -u --wd=/ -- "$@"
}

# sd_ctl ARGS...: systemctl inside.
sd_ctl() { sd_exec systemctl --no-pager "$@"; }

# sd_run ARGS...: systemd-run inside; the D-Bus socket it needs is started
# on first use.
sd_run() {
	if [ -z "$SD_DBUS" ]; then
		sd_ctl start dbus.socket || fail "sd_run: cannot start dbus.socket"
		SD_DBUS=1
	fi
	sd_exec systemd-run "$@"
}

# sd_write PATH: write stdin to PATH inside (parents created), e.g. a drop-in
#   sd_write /run/systemd/system/foo.service.d/10-test.conf <<<"$dropin"
# and then `sd_ctl daemon-reload`.
sd_write() {
	# shellcheck disable=SC2016 # $1 is expanded by the inner sh
	sd_exec sh -c 'mkdir -p "$(dirname "$1")" && cat >"$1"' sd_write "$1"
}

# sd_result UNIT: the unit's Result= (success, exit-code, resources, ...).
sd_result() { sd_ctl show -P Result "$1"; }

# sd_journal UNIT: the unit's journal, for diagnostics.
sd_journal() { sd_exec journalctl --no-pager -q -o cat -u "$1"; }

# unit_fail UNIT MESSAGE...: show the unit's status and journal, then fail.
unit_fail() {
	local unit=$1; shift
	{
		echo "--- systemctl status $unit"
		sd_ctl status "$unit" 2>&1 || true
		echo "--- journal of $unit"
		sd_journal "$unit" 2>&1 | tail -n 30 || true
	} | sed 's/^/    /' >&2 || true
	fail "$*"
}

# start_ok UNIT DESCRIPTION [VERB]: `systemctl VERB UNIT` (start) must work.
start_ok() {
	sd_ctl "${3:-start}" "$1" 2>/dev/null || unit_fail "$1" "$2: 'systemctl ${3:-start} $1' failed"
	ok "$2"
}

# start_fails UNIT DESCRIPTION: `systemctl start UNIT` must fail.
start_fails() {
	if sd_ctl start "$1" 2>/dev/null; then
		unit_fail "$1" "$2: 'systemctl start $1' succeeded but must fail"
	fi
	ok "$2"
}
