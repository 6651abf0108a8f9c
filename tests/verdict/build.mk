# verdict-run: runs frames through cgroup_skb programs (BPF_PROG_TEST_RUN).
# Included by tests/Makefile, paths relative to tests/.
TEST_PROGS += $(O)/verdict-run

$(O)/verdict-run: verdict/verdict-run.c verdict/frames.h | $(O)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(LIBBPF_CFLAGS) -Iverdict -o $@ $< $(LIBBPF_LIBS)

# cbpf-run: runs frames through classic BPF socket filters on a veth pair,
# compiling each filter with the language's classic back end (lang/)
TEST_PROGS += $(O)/cbpf-run
CBPF_LANG := $(filter-out %/emit_c.c,$(wildcard $(TOP)/lang/*.c))

$(O)/cbpf-run: verdict/cbpf-run.c verdict/frames.h $(CBPF_LANG) $(wildcard $(TOP)/lang/*.h) | $(O)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Iverdict -I$(TOP)/lang -I$(TOP)/include -o $@ $< $(CBPF_LANG)
