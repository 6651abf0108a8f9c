# verdict-run: runs frames through cgroup_skb programs (BPF_PROG_TEST_RUN).
# Included by tests/Makefile, paths relative to tests/.
TEST_PROGS += $(O)/verdict-run

$(O)/verdict-run: verdict/verdict-run.c verdict/frames.h | $(O)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(LIBBPF_CFLAGS) -Iverdict -o $@ $< $(LIBBPF_LIBS)

# cbpf-run: runs frames through socket filters on a veth pair, compiling
# each filter as cgfilter wrap does (lang/, wrap/ebpf.c)
TEST_PROGS += $(O)/cbpf-run
CBPF_SRC := $(filter-out %/emit_c.c,$(wildcard $(TOP)/lang/*.c)) $(TOP)/wrap/ebpf.c \
	$(TOP)/engine/sys.c

$(O)/cbpf-run: verdict/cbpf-run.c verdict/frames.h $(CBPF_SRC) $(wildcard $(TOP)/lang/*.h) \
		$(TOP)/wrap/wrap.h | $(O)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Iverdict -I$(TOP)/lang -I$(TOP)/include -I$(TOP)/wrap -I$(TOP)/engine \
		-o $@ $< $(CBPF_SRC)

# exe-run: the engine (its library) with exe read from a map of the test's
TEST_PROGS += $(O)/exe-run
EXE_RUN_SRC := $(filter-out %/emit_c.c,$(wildcard $(TOP)/lang/*.c)) $(wildcard $(TOP)/engine/*.c)

$(O)/exe-run: verdict/exe-run.c verdict/frames.h $(EXE_RUN_SRC) $(wildcard $(TOP)/lang/*.h) \
		$(wildcard $(TOP)/engine/*.h) $(wildcard $(TOP)/include/*.h) | $(O)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(LIBBPF_CFLAGS) -Iverdict -I$(TOP)/lang -I$(TOP)/include -I$(TOP)/engine \
		-o $@ $< $(EXE_RUN_SRC) $(LIBBPF_LIBS) $(ENGINE_LIBS)

# dir-probe: what ingress_ifindex holds on each hook of a cgroup, with real
# sockets (tests/52-direction.sh)
TEST_PROGS += $(O)/dir-probe $(O)/dir-probe.bpf.o

$(O)/dir-probe: verdict/dir-probe.c | $(O)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(LIBBPF_CFLAGS) -o $@ $< $(LIBBPF_LIBS)

$(O)/dir-probe.bpf.o: verdict/dir-probe.bpf.c | $(O)
	$(call msg,CLANG,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -target bpf $(BPF_INCLUDES) -c -o $@ $<
