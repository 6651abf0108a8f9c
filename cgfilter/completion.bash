# bash completion for cgfilter(8).  The commands, each command's options and
# the kinds of its arguments come from the command itself (cgfilter
# __complete, from its one table), so this file names none of them; it only
# knows how to list each kind: PIN (files under /sys/fs/bpf), CGROUP (cgroup2
# directories), UNIT (systemd units), FILE, DIR, @SET, a|b|c (those words).
# Installed as share/bash-completion/completions/cgfilter.

# the cgroup2 mount point (never assumed)
_cgfilter_cgroup2() {
	awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts 2>/dev/null
}

# _cgfilter_files [-d] DEFAULT: paths starting with $cur (DEFAULT if empty)
_cgfilter_files() {
	local d=
	[ "$1" = -d ] && { d=1; shift; }
	local c=${cur:-$1}
	compopt -o filenames 2>/dev/null
	if [ -n "$d" ]; then
		mapfile -t COMPREPLY < <(compgen -d -- "$c")
	else
		mapfile -t COMPREPLY < <(compgen -f -- "$c")
	fi
}

# a cgroup: a directory of cgroup2, absolute or from its root (user.slice)
_cgfilter_cgroups() {
	local root
	if [[ $cur == /* ]] || ! root=$(_cgfilter_cgroup2) || [ -z "$root" ]; then
		_cgfilter_files -d /
		return
	fi
	compopt -o filenames 2>/dev/null
	mapfile -t COMPREPLY < <(cd "$root" 2>/dev/null && compgen -d -- "$cur")
}

_cgfilter_units() {
	local units
	units=$({
		systemctl list-unit-files --no-legend --no-pager --plain 2>/dev/null
		systemctl list-units --all --no-legend --no-pager --plain 2>/dev/null
	} | awk '{ print $1 }' | sort -u)
	mapfile -t COMPREPLY < <(compgen -W "$units" -- "$cur")
}

# the named sets of the engine at PIN (PIN_maps/set_NAME)
_cgfilter_sets() {
	local sets
	sets=$(cd "$1_maps" 2>/dev/null && compgen -G 'set_*' | sed 's/^set_/@/')
	mapfile -t COMPREPLY < <(compgen -W "$sets" -- "$cur")
}

# _cgfilter_kind KIND PIN: complete an argument of that kind
_cgfilter_kind() {
	case $1 in
	PIN) _cgfilter_files /sys/fs/bpf/ ;;
	CGROUP | PATH) _cgfilter_cgroups ;;
	UNIT | UNIT...) _cgfilter_units ;;
	FILE) _cgfilter_files "" ;;
	DIR) _cgfilter_files -d /sys/fs/bpf/ ;;
	@SET) _cgfilter_sets "$2" ;;
	*'|'*) mapfile -t COMPREPLY < <(compgen -W "${1//|/ }" -- "$cur") ;;
	esac
}

_cgfilter() {
	local cgf=${COMP_WORDS[0]} cur=${COMP_WORDS[COMP_CWORD]}
	local prev=${COMP_WORDS[COMP_CWORD - 1]} i cmd= at=0
	COMPREPLY=()
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-*) ;;
		*) cmd=${COMP_WORDS[i]}; at=$i; break ;;
		esac
	done
	if [ -z "$cmd" ] || { [ "$cmd" = help ] && [ $((at + 1)) -eq "$COMP_CWORD" ]; }; then
		if [[ $cur == -* ]] && [ -z "$cmd" ]; then
			mapfile -t COMPREPLY < <(compgen -W '-v --verbose --help --version' -- "$cur")
		else
			mapfile -t COMPREPLY < <(compgen -W "$("$cgf" __complete commands 2>/dev/null)" -- "$cur")
		fi
		return 0
	fi
	local opts args kinds=() pos=() name arg w
	opts=$("$cgf" __complete options "$cmd" 2>/dev/null) || return 0
	args=$("$cgf" __complete args "$cmd" 2>/dev/null)
	[ -n "$args" ] && mapfile -t kinds <<<"$args"
	# the value of an option that takes one
	while read -r name arg; do
		if [ -n "$arg" ] && [ "$prev" = "$name" ]; then
			_cgfilter_kind "$arg"
			return 0
		fi
	done <<<"$opts"
	# the positional arguments before this word; after "--", a command
	for ((i = at + 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if [ "$w" = -- ]; then
			[ "$cmd" = run ] && mapfile -t COMPREPLY < <(compgen -c -- "$cur")
			return 0
		fi
		if [[ $w == -* ]]; then
			grep -qx -- "$w [A-Z]*" <<<"$opts" && i=$((i + 1))
			continue
		fi
		pos+=("$w")
	done
	if [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$(awk '{ print $1 }' <<<"$opts")" -- "$cur")
		return 0
	fi
	i=${#pos[@]}
	# the last kind repeats when it says so (ITEM...)
	[ "${#kinds[@]}" -gt 0 ] && [ "$i" -ge "${#kinds[@]}" ] && [[ ${kinds[-1]} == *... ]] && i=$((${#kinds[@]} - 1))
	[ "$i" -lt "${#kinds[@]}" ] && _cgfilter_kind "${kinds[i]}" "${pos[0]:-}"
	return 0
}
complete -F _cgfilter cgfilter
