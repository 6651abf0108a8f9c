# Shared make rules for the BPF parts: toolchain checks and quiet output.
# Included by port-firewall/, bpf-program-only/, cgfilter/ and tools/.  V=1 shows
# full commands.

# The language's front end and its C back end (lang/): what cgfilter-expr,
# port-firewall's FILTER checker, is built from.
EXPR_SRC = $(addprefix $(TOP)/lang/,expr.c vocab.c emit_c.c)
EXPR_HDR = $(TOP)/lang/expr.h $(TOP)/include/cgf_vocab.h

CLANG ?= clang
BPFTOOL ?= bpftool
BPF_CFLAGS ?= -g -O2 -Wall -Werror

ifeq ($(V),1)
Q =
msg =
else ifneq ($(findstring s,$(firstword -$(MAKEFLAGS))),)
Q = @
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

# clang -target bpf needs the multiarch directory for <asm/types.h>.
MULTIARCH := $(shell $(CLANG) -print-multiarch 2>/dev/null || gcc -dumpmachine 2>/dev/null)
BPF_INCLUDES = -idirafter /usr/include/$(MULTIARCH)

# Stop early with what to install instead of a cryptic compiler error.
define check_tool
	@command -v $(1) >/dev/null 2>&1 || { \
		echo "$(2): $(1) not found: install it (Debian/Ubuntu: apt-get install $(3))" >&2; exit 1; }
endef
define check_bpf_headers
	@printf '#include <bpf/bpf_helpers.h>\n#include <asm/types.h>\n' | \
		$(CLANG) -target bpf $(BPF_INCLUDES) -E -x c - >/dev/null 2>&1 || { \
		echo "$(1): BPF headers not found: install them (Debian/Ubuntu: apt-get install libbpf-dev linux-libc-dev)" >&2; exit 1; }
endef

# $(call check_bpffs,VAR,NAME,VERB): refuse to VERB (pin, unload) the path
# in the environment variable VAR outside a mounted BPF filesystem, saying
# how to mount one: rm or mv there could hit any file.
define check_bpffs
	@d=$$(dirname -- "$$$(1)"); [ "$$(stat -f -c %T -- "$$d" 2>/dev/null)" = bpf_fs ] || { \
		echo "$(2): cannot $(3) $$$(1): $$d is not on a BPF filesystem (mount -t bpf bpf /sys/fs/bpf)" >&2; exit 1; }
endef

# Shell functions for the two recipes below, which run each under an flock
# on the pin's directory, so that two loads or unloads of pins there take
# turns (two loads of one PIN would share PIN-loading).
#   lock_dir PATH   hold the lock on PATH's directory until the shell exits
#   what_is PATH    print what is at PATH: nothing if nothing, "cgroup_skb"
#                   for a cgroup_skb program, else what it is ("a directory",
#                   "a BPF map", "a BPF program of type xdp", ...)
define bpf_pin_fns
lock_dir() { exec 9<"$$(dirname -- "$$1")" && flock 9; }; \
what_is() { \
	if [ -d "$$1" ]; then echo "a directory"; \
	elif [ -e "$$1" ]; then \
		j=$$($(BPFTOOL) -j prog show pinned "$$1" 2>/dev/null); \
		case $$j in \
		*'"type":"cgroup_skb"'*) echo cgroup_skb ;; \
		'{"id":'*) echo "a BPF program of type $$(echo "$$j" | \
			sed -n 's/^{"id":[0-9]*,"type":"\([^"]*\)".*/\1/p')" ;; \
		*) if $(BPFTOOL) map show pinned "$$1" >/dev/null 2>&1; then \
			echo "a BPF map"; \
		   else \
			e=$$($(BPFTOOL) prog show pinned "$$1" 2>&1 >/dev/null | head -n 1); \
			echo "something bpftool cannot read ($${e:-it said nothing})"; \
		   fi ;; \
		esac; \
	fi; }
endef

# $(call pin_program,OBJ,NAME): load OBJ as a cgroup/skb program and pin it at
# $PIN_PATH (an environment variable, so no shell sees it unquoted).  It is
# pinned under a temporary name, then renamed over PIN: a failed load leaves
# an existing pin untouched and a reload replaces it in one step.  Only a
# cgroup_skb program is replaced: a directory (mv would move the new pin into
# it), a map or another program at PIN is refused and left alone.
define pin_program
	$(call check_tool,$(BPFTOOL),$(2),bpftool)
	$(call check_tool,flock,$(2),util-linux)
	$(call check_bpffs,PIN_PATH,$(2),pin)
	$(call msg,LOAD,$$PIN_PATH)
	$(Q)$(bpf_pin_fns); \
	n=$${PIN_PATH##*/}; \
	case $$n in \
	"") echo "$(2): cannot pin $$PIN_PATH: give a name after the last '/'" >&2; exit 1 ;; \
	*.*) echo "$(2): cannot pin $$PIN_PATH: a BPF filesystem name may not contain '.'" >&2; exit 1 ;; \
	esac; \
	[ $${#n} -le 247 ] || { \
		echo "$(2): cannot pin $$PIN_PATH: its name is longer than 247 bytes (255 with -loading)" >&2; \
		exit 1; }; \
	lock_dir "$$PIN_PATH" || exit 1; \
	w=$$(what_is "$$PIN_PATH"); \
	[ -z "$$w" ] || [ "$$w" = cgroup_skb ] || { \
		echo "$(2): cannot pin $$PIN_PATH: it is $$w, not a cgroup_skb program" >&2; exit 1; }; \
	w=$$(what_is "$$PIN_PATH-loading"); \
	[ -z "$$w" ] || [ "$$w" = cgroup_skb ] || { \
		echo "$(2): cannot pin $$PIN_PATH: $$PIN_PATH-loading is $$w, not a cgroup_skb program" >&2; \
		exit 1; }; \
	rm -f -- "$$PIN_PATH-loading"; \
	$(BPFTOOL) prog load $(1) "$$PIN_PATH-loading" type cgroup/skb || { \
		rm -f -- "$$PIN_PATH-loading"; \
		echo "$(2): cannot load $(1) at $$PIN_PATH (bpftool says why above)" >&2; exit 1; }; \
	mv -fT -- "$$PIN_PATH-loading" "$$PIN_PATH"
endef

# $(call unpin_program,NAME): remove the cgroup_skb program pinned at
# $PIN_PATH.  Anything else there (a directory, a map, another program) is
# refused and left alone: PIN could be any path.  Nothing there is said and
# is not an error (unload twice works, as the reference's rm -f did).
define unpin_program
	$(call check_tool,$(BPFTOOL),$(1),bpftool)
	$(call check_tool,flock,$(1),util-linux)
	$(call check_bpffs,PIN_PATH,$(1),unload)
	$(call msg,UNLOAD,$$PIN_PATH)
	$(Q)$(bpf_pin_fns); \
	lock_dir "$$PIN_PATH" || exit 1; \
	w=$$(what_is "$$PIN_PATH"); \
	case $$w in \
	cgroup_skb) rm -f -- "$$PIN_PATH" ;; \
	"") echo "$(1): nothing is pinned at $$PIN_PATH: nothing to unload" >&2 ;; \
	*) echo "$(1): cannot unload $$PIN_PATH: it is $$w, not a cgroup_skb program" >&2; exit 1 ;; \
	esac
endef
