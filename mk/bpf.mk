# Shared make rules for the BPF parts: toolchain checks and quiet output.
# Included by port-firewall/, bpf-program-only/ and cgfilter/.  V=1 shows
# full commands.

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

# Refuse to pin outside a mounted BPF filesystem, saying how to mount one.
define check_bpffs
	@d=$$(dirname "$$$(1)"); [ "$$(stat -f -c %T "$$d" 2>/dev/null)" = bpf_fs ] || { \
		echo "$(2): cannot pin $$$(1): $$d is not on a BPF filesystem (mount -t bpf bpf /sys/fs/bpf)" >&2; exit 1; }
endef

# $(call pin_program,OBJ,NAME): load OBJ as a cgroup/skb program and pin it at
# $PIN_PATH (an environment variable, so no shell sees it unquoted).  It is
# pinned under a temporary name, then renamed over PIN: a failed load leaves
# an existing pin untouched and a reload replaces it in one step.
define pin_program
	$(call check_tool,$(BPFTOOL),$(2),bpftool)
	$(call check_bpffs,PIN_PATH,$(2))
	$(call msg,LOAD,$$PIN_PATH)
	$(Q)rm -f "$$PIN_PATH-loading"
	$(Q)$(BPFTOOL) prog load $(1) "$$PIN_PATH-loading" type cgroup/skb || { \
		rm -f "$$PIN_PATH-loading"; \
		echo "$(2): cannot load $(1) at $$PIN_PATH (see the verifier log above)" >&2; exit 1; }
	$(Q)mv -f "$$PIN_PATH-loading" "$$PIN_PATH"
endef
