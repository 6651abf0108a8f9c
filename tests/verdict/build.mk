# verdict-run: runs frames through cgroup_skb programs (BPF_PROG_TEST_RUN).
# Included by tests/Makefile, paths relative to tests/.
TEST_PROGS += $(O)/verdict-run

$(O)/verdict-run: verdict/verdict-run.c verdict/frames.h | $(O)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(LIBBPF_CFLAGS) -Iverdict -o $@ $< $(LIBBPF_LIBS)
