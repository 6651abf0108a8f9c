// SPDX-License-Identifier: GPL-2.0-only
/*
 * The engine's own programs, made once when an engine loads (cgf_abi.h):
 *
 *  - the entry program, pinned at PIN: parses the packet (parse_bpf.c),
 *    leaves its fields in skb->cb and tail-calls the filter in force (a
 *    malformed packet too, marked so: the filter's mode decides); a packet
 *    with no filter goes to the drop program;
 *  - the drop program, slot 0: counts a drop and, while a monitor holds
 *    the lease, reports it; in observe mode it also takes what the filter
 *    would drop, counts and reports it, and passes it.
 *
 * So a filter program is only the filter: small, quick to verify, and
 * 'cgfilter set' puts a new one in force in about a millisecond.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/in.h>

#include "gen.h"

/* to the drop program, for reason */
static void to_drop(struct gen *g, enum cgf_reason reason)
{
	i_mov(g, BPF_REG_0, reason);
	i_stx(g, BPF_W, R_CTX, CB(3), BPF_REG_0);
	gen_tail_call(g, g->m_slots, CGF_SLOT_DROP, -1);
	/* slot 0 is filled at load: this is not reached, but fails closed */
	i_mov(g, BPF_REG_0, 0);
	i_exit(g);
}

/* to the filter in force, with cb[3] = reason (CGF_DROP_NOFILTER: a
 * packet for the filter; CGF_DROP_MALFORMED: one it must not judge) */
static void to_filter(struct gen *g, bool shared, enum cgf_reason reason, bool pack)
{
	if (pack)
		gen_pack_cb(g);
	i_mov(g, BPF_REG_0, reason);
	i_stx(g, BPF_W, R_CTX, CB(3), BPF_REG_0);
	if (shared) {
		cgf_asm_note(g->a, "the filter of the cgroup (0: none, the drop program)");
		cgf_asm_ld_map(g->a, BPF_REG_1, g->m_cgroups);
		i_mov(g, BPF_REG_2, 0);
		i_call(g, BPF_FUNC_get_local_storage);
		i_ldx(g, BPF_W, BPF_REG_7, BPF_REG_0, 0);
		gen_tail_call(g, g->m_slots, 0, BPF_REG_7);
	} else {
		cgf_asm_note(g->a, "the filter in force");
		gen_tail_call(g, g->m_slots, CGF_SLOT_DEDICATED, -1);
	}
}

/* to slow unless n bytes from r2 are in the packet's linear data (r3) */
static void fast_need(struct gen *g, int32_t n, uint32_t slow)
{
	i_movr(g, BPF_REG_4, BPF_REG_2);
	i_alu(g, BPF_ADD, BPF_REG_4, n);
	cgf_asm_jmp_reg(g->a, BPF_JGT, BPF_REG_4, BPF_REG_3, slow);
}

/*
 * The quick way, for what most packets are: TCP, UDP or ICMP over IPv4
 * without fragments, or over IPv6 with at most FAST_EXT_HDRS plain
 * extension headers, all in the packet's linear data.  It reads the
 * headers where they are and writes skb->cb as gen_pack_cb() would, with
 * the same checks; anything else (another protocol, a fragment, another
 * extension header or one more, a header beyond the linear data, or a
 * check that fails) goes to the full parser (gen_parse()) from the start,
 * which decides as it always did.  So the quick way changes no verdict
 * and no field: it only skips the stack, for the packets it knows (test
 * 41, tests/verdict/check_fields.py, holds both to the reference).
 *
 * Registers: r2 the header read (in the packet), r3 data_end, r7 the
 * transport header's offset, r8 the protocol, r9 cb[2] being made.
 */
static void fast_l4(struct gen *g, int icmp, uint32_t cb2, uint32_t slow, uint32_t done)
{
	uint32_t not_tcp = cgf_asm_label(g->a), not_udp = cgf_asm_label(g->a);
	uint32_t ports = cgf_asm_label(g->a);

	i_alu(g, BPF_OR, BPF_REG_9, (int32_t)cb2);
	cgf_asm_jmp_imm(g->a, BPF_JNE, BPF_REG_8, IPPROTO_TCP, not_tcp);
	fast_need(g, 20, slow);
	i_ldx(g, BPF_B, BPF_REG_0, BPF_REG_2, 12);
	i_alu(g, BPF_RSH, BPF_REG_0, 4);
	i_alu(g, BPF_LSH, BPF_REG_0, 2);
	cgf_asm_jmp_imm(g->a, BPF_JLT, BPF_REG_0, 20, slow);
	i_alur(g, BPF_ADD, BPF_REG_0, BPF_REG_7);
	i_ldx(g, BPF_W, BPF_REG_1, R_CTX, offsetof(struct __sk_buff, len));
	cgf_asm_jmp_reg(g->a, BPF_JGT, BPF_REG_0, BPF_REG_1, slow);
	i_ldx(g, BPF_B, BPF_REG_0, BPF_REG_2, 13);
	i_alu(g, BPF_LSH, BPF_REG_0, 24);
	i_alu(g, BPF_OR, BPF_REG_0, IPPROTO_TCP);
	i_stx(g, BPF_W, R_CTX, CB(1), BPF_REG_0);
	i_alu(g, BPF_OR, BPF_REG_9, CGF_CB_TCP << 8);
	cgf_asm_ja(g->a, ports);

	cgf_asm_place(g->a, not_tcp);
	cgf_asm_jmp_imm(g->a, BPF_JNE, BPF_REG_8, IPPROTO_UDP, not_udp);
	fast_need(g, 8, slow);
	i_mov(g, BPF_REG_0, IPPROTO_UDP);
	i_stx(g, BPF_W, R_CTX, CB(1), BPF_REG_0);
	i_alu(g, BPF_OR, BPF_REG_9, CGF_CB_UDP << 8);
	cgf_asm_place(g->a, ports);
	i_ldx(g, BPF_H, BPF_REG_0, BPF_REG_2, 0);
	i_be(g, BPF_REG_0, 16);
	i_ldx(g, BPF_H, BPF_REG_1, BPF_REG_2, 2);
	i_be(g, BPF_REG_1, 16);
	i_alu(g, BPF_LSH, BPF_REG_1, 16);
	i_alur(g, BPF_OR, BPF_REG_0, BPF_REG_1);
	i_stx(g, BPF_W, R_CTX, CB(0), BPF_REG_0);
	cgf_asm_ja(g->a, done);

	cgf_asm_place(g->a, not_udp);
	cgf_asm_jmp_imm(g->a, BPF_JNE, BPF_REG_8, icmp, slow);
	fast_need(g, 4, slow);
	i_ldx(g, BPF_B, BPF_REG_0, BPF_REG_2, 0);
	i_alu(g, BPF_LSH, BPF_REG_0, 8);
	i_ldx(g, BPF_B, BPF_REG_1, BPF_REG_2, 1);
	i_alu(g, BPF_LSH, BPF_REG_1, 16);
	i_alur(g, BPF_OR, BPF_REG_0, BPF_REG_1);
	i_alu(g, BPF_OR, BPF_REG_0, icmp);
	i_stx(g, BPF_W, R_CTX, CB(1), BPF_REG_0);
	i_mov(g, BPF_REG_0, 0);
	i_stx(g, BPF_W, R_CTX, CB(0), BPF_REG_0);
	i_alu(g, BPF_OR, BPF_REG_9, CGF_CB_ICMP << 8);
}

/* The IPv6 extension headers the quick way follows (of those gen_parse()
 * follows, the ones whose length is (len + 1) * 8 and which set no field),
 * and how many. */
static const int fast_ext_hdrs[] = { IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS,
				     135 /* mobility */, 139 /* HIP */, 140 /* shim6 */ };
#define FAST_EXT_HDRS 2

/* r8 TCP, UDP or ICMPv6: to l4; one of fast_ext_hdrs: step over it (r2,
 * r7 and r8 the next header's); else to slow */
static void fast_ext(struct gen *g, uint32_t l4, uint32_t slow)
{
	uint32_t ext = cgf_asm_label(g->a);
	size_t i;

	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_8, IPPROTO_TCP, l4);
	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_8, IPPROTO_UDP, l4);
	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_8, IPPROTO_ICMPV6, l4);
	for (i = 0; i < sizeof(fast_ext_hdrs) / sizeof(fast_ext_hdrs[0]); i++)
		cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_8, fast_ext_hdrs[i], ext);
	cgf_asm_ja(g->a, slow);
	cgf_asm_place(g->a, ext);
	fast_need(g, 2, slow);
	i_ldx(g, BPF_B, BPF_REG_0, BPF_REG_2, 1);
	i_ldx(g, BPF_B, BPF_REG_8, BPF_REG_2, 0);
	i_alu(g, BPF_ADD, BPF_REG_0, 1);
	i_alu(g, BPF_LSH, BPF_REG_0, 3);
	i_alur(g, BPF_ADD, BPF_REG_7, BPF_REG_0);
	i_ldx(g, BPF_W, BPF_REG_1, R_CTX, offsetof(struct __sk_buff, len));
	cgf_asm_jmp_reg(g->a, BPF_JGT, BPF_REG_7, BPF_REG_1, slow);
	i_ldx(g, BPF_W, BPF_REG_2, R_CTX, offsetof(struct __sk_buff, data));
	i_alur(g, BPF_ADD, BPF_REG_2, BPF_REG_7);
}

/* the quick way (see fast_l4()); to slow for anything else */
static void gen_fast_parse(struct gen *g, bool shared, uint32_t slow)
{
	uint32_t v6 = cgf_asm_label(g->a), done = cgf_asm_label(g->a);
	uint32_t l4_6 = cgf_asm_label(g->a);
	int i;

	cgf_asm_note(g->a, "the quick way: TCP, UDP or ICMP, no fragment, plain IPv6 extension headers");
	i_ldx(g, BPF_W, BPF_REG_0, R_CTX, offsetof(struct __sk_buff, protocol));
	i_ldx(g, BPF_W, BPF_REG_2, R_CTX, offsetof(struct __sk_buff, data));
	i_ldx(g, BPF_W, BPF_REG_3, R_CTX, offsetof(struct __sk_buff, data_end));
	cgf_asm_jmp_imm(g->a, BPF_JNE, BPF_REG_0, htons(ETH_P_IP), v6);
	fast_need(g, 20, slow);
	i_ldx(g, BPF_B, BPF_REG_0, BPF_REG_2, 0);
	i_movr(g, BPF_REG_1, BPF_REG_0);
	i_alu(g, BPF_RSH, BPF_REG_1, 4);
	cgf_asm_jmp_imm(g->a, BPF_JNE, BPF_REG_1, 4, slow);
	i_alu(g, BPF_AND, BPF_REG_0, 15);
	cgf_asm_jmp_imm(g->a, BPF_JLT, BPF_REG_0, 5, slow);
	i_movr(g, BPF_REG_7, BPF_REG_0);
	i_alu(g, BPF_LSH, BPF_REG_7, 2);
	i_ldx(g, BPF_W, BPF_REG_1, R_CTX, offsetof(struct __sk_buff, len));
	cgf_asm_jmp_reg(g->a, BPF_JGT, BPF_REG_7, BPF_REG_1, slow);
	i_ldx(g, BPF_H, BPF_REG_0, BPF_REG_2, 6);
	i_be(g, BPF_REG_0, 16);
	i_alu(g, BPF_AND, BPF_REG_0, 0x3fff);
	cgf_asm_jmp_imm(g->a, BPF_JNE, BPF_REG_0, 0, slow);
	i_ldx(g, BPF_B, BPF_REG_8, BPF_REG_2, 9);
	i_ldx(g, BPF_B, BPF_REG_9, BPF_REG_2, 8);
	i_alur(g, BPF_ADD, BPF_REG_2, BPF_REG_7);
	fast_l4(g, IPPROTO_ICMP, CGF_CB_IP << 8 | 4 << 16, slow, done);
	cgf_asm_ja(g->a, done);

	cgf_asm_place(g->a, v6);
	cgf_asm_jmp_imm(g->a, BPF_JNE, BPF_REG_0, htons(ETH_P_IPV6), slow);
	fast_need(g, 40, slow);
	i_ldx(g, BPF_B, BPF_REG_0, BPF_REG_2, 0);
	i_alu(g, BPF_RSH, BPF_REG_0, 4);
	cgf_asm_jmp_imm(g->a, BPF_JNE, BPF_REG_0, 6, slow);
	i_ldx(g, BPF_B, BPF_REG_8, BPF_REG_2, 6);
	i_ldx(g, BPF_B, BPF_REG_9, BPF_REG_2, 7);
	i_mov(g, BPF_REG_7, 40);
	i_alu(g, BPF_ADD, BPF_REG_2, 40);
	for (i = 0; i < FAST_EXT_HDRS; i++)
		fast_ext(g, l4_6, slow);
	cgf_asm_place(g->a, l4_6);
	fast_l4(g, IPPROTO_ICMPV6, CGF_CB_IPV6 << 8 | 6 << 16, slow, done);

	cgf_asm_place(g->a, done);
	i_stx(g, BPF_W, R_CTX, CB(2), BPF_REG_9);
	i_ldx(g, BPF_W, BPF_REG_0, R_CTX, offsetof(struct __sk_buff, len));
	i_stx(g, BPF_W, R_CTX, CB(4), BPF_REG_0);
	to_filter(g, shared, CGF_DROP_NOFILTER, false);
	cgf_asm_note(g->a, "no filter in force: drop");
	to_drop(g, CGF_DROP_NOFILTER);
}

int cgf_gen_entry(bool shared, const struct cgf_gen_env *env, struct cgf_gen *out, char *why,
		  size_t whylen)
{
	struct gen g = { .why = why, .whylen = whylen };
	uint32_t slow;

	gen_begin(&g, out, env);
	gen_prologue(&g);
	slow = cgf_asm_label(g.a);
	gen_fast_parse(&g, shared, slow);
	cgf_asm_place(g.a, slow);
	gen_parse(&g);

	cgf_asm_place(g.a, g.l_filter);
	to_filter(&g, shared, CGF_DROP_NOFILTER, true);
	cgf_asm_note(g.a, "no filter in force: drop");
	to_drop(&g, CGF_DROP_NOFILTER);

	cgf_asm_place(g.a, g.l_malformed);
	cgf_asm_note(g.a, "malformed: the filter's mode says (enforce and block drop it)");
	to_filter(&g, shared, CGF_DROP_MALFORMED, true);
	to_drop(&g, CGF_DROP_MALFORMED);
	return gen_finish(&g);
}

/* copy a field (u64 on the stack) into the event r9 points to */
static void ev_field(struct gen *g, int field, uint8_t size, int off)
{
	i_field(g, BPF_REG_0, field);
	i_stx(g, size, BPF_REG_9, (int16_t)off, BPF_REG_0);
}

/*
 * A drop event, if a monitor's lease runs and the rate limit allows: at
 * most ctl.events_per_sec a second and CPU; what it holds back is counted.
 */
void gen_report_drop(struct gen *g)
{
	uint32_t done = cgf_asm_label(g->a), fresh = cgf_asm_label(g->a);
	uint32_t suppressed = cgf_asm_label(g->a);
	int i;

	cgf_asm_note(g->a, "a drop event only while a monitor's lease runs");
	cgf_asm_ld_map(g->a, BPF_REG_1, g->m_ctl);
	i_fp(g, BPF_REG_2, FP_ZERO);
	i_call(g, BPF_FUNC_map_lookup_elem);
	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_0, 0, done);
	i_ldx(g, BPF_DW, BPF_REG_7, BPF_REG_0, offsetof(struct cgf_ctl, monitor_until_ns));
	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_7, 0, done);
	i_ldx(g, BPF_W, BPF_REG_8, BPF_REG_0, offsetof(struct cgf_ctl, events_per_sec));
	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_8, 0, done);
	i_call(g, BPF_FUNC_ktime_get_ns);
	cgf_asm_jmp_reg(g->a, BPF_JGT, BPF_REG_0, BPF_REG_7, done);
	i_movr(g, BPF_REG_7, BPF_REG_0); /* now */
	/* the fields for the event, only now: a drop no monitor watches
	 * costs no more than its counters.  All of them (an address that
	 * cannot be read is left 0; unpacking keeps r7 and r8) */
	gen_unpack_cb(g, (1u << CGF_NFIELDS) - 1, GEN_SADDR | GEN_DADDR);
	cgf_asm_place(g->a, g->l_malformed);
	cgf_asm_ld_map(g->a, BPF_REG_1, g->m_rl);
	i_fp(g, BPF_REG_2, FP_ZERO);
	i_call(g, BPF_FUNC_map_lookup_elem);
	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_0, 0, done);
	/* a new second: a second's tokens */
	i_movr(g, BPF_REG_1, BPF_REG_7);
	i_ldx(g, BPF_DW, BPF_REG_2, BPF_REG_0, offsetof(struct cgf_ratelimit, last_ns));
	i_alur(g, BPF_SUB, BPF_REG_1, BPF_REG_2);
	cgf_asm_jmp_imm(g->a, BPF_JLT, BPF_REG_1, 1000000000, fresh);
	i_stx(g, BPF_DW, BPF_REG_0, offsetof(struct cgf_ratelimit, last_ns), BPF_REG_7);
	i_stx(g, BPF_DW, BPF_REG_0, offsetof(struct cgf_ratelimit, tokens), BPF_REG_8);
	cgf_asm_place(g->a, fresh);
	i_ldx(g, BPF_DW, BPF_REG_1, BPF_REG_0, offsetof(struct cgf_ratelimit, tokens));
	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_1, 0, suppressed);
	i_alu(g, BPF_SUB, BPF_REG_1, 1);
	i_stx(g, BPF_DW, BPF_REG_0, offsetof(struct cgf_ratelimit, tokens), BPF_REG_1);
	cgf_asm_ld_map(g->a, BPF_REG_1, g->m_events);
	i_mov(g, BPF_REG_2, sizeof(struct cgf_event));
	i_mov(g, BPF_REG_3, 0);
	i_call(g, BPF_FUNC_ringbuf_reserve);
	cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_0, 0, suppressed);
	i_movr(g, BPF_REG_9, BPF_REG_0);
	i_stx(g, BPF_DW, BPF_REG_9, offsetof(struct cgf_event, time_ns), BPF_REG_7);
	i_movr(g, BPF_REG_1, R_CTX);
	i_call(g, BPF_FUNC_skb_cgroup_id);
	i_stx(g, BPF_DW, BPF_REG_9, offsetof(struct cgf_event, cgroup_id), BPF_REG_0);
	i_ldx(g, BPF_W, BPF_REG_0, R_CTX, offsetof(struct __sk_buff, len));
	i_stx(g, BPF_W, BPF_REG_9, offsetof(struct cgf_event, len), BPF_REG_0);
	i_ldx(g, BPF_DW, BPF_REG_0, BPF_REG_10, FP_FAMILY);
	i_stx(g, BPF_B, BPF_REG_9, offsetof(struct cgf_event, family), BPF_REG_0);
	ev_field(g, CGF_F_IP_PROTO, BPF_B, offsetof(struct cgf_event, proto));
	i_ldx(g, BPF_DW, BPF_REG_0, BPF_REG_10, FP_MALFORMED);
	i_stx(g, BPF_B, BPF_REG_9, offsetof(struct cgf_event, malformed), BPF_REG_0);
	i_ldx(g, BPF_W, BPF_REG_0, R_CTX, CB(3));
	i_stx(g, BPF_B, BPF_REG_9, offsetof(struct cgf_event, reason), BPF_REG_0);
	ev_field(g, CGF_F_SRC_PORT, BPF_H, offsetof(struct cgf_event, sport));
	ev_field(g, CGF_F_DST_PORT, BPF_H, offsetof(struct cgf_event, dport));
	ev_field(g, CGF_F_ICMP_TYPE, BPF_B, offsetof(struct cgf_event, icmp_type));
	ev_field(g, CGF_F_ICMP_CODE, BPF_B, offsetof(struct cgf_event, icmp_code));
	ev_field(g, CGF_F_TCP_FLAGS, BPF_B, offsetof(struct cgf_event, tcp_flags));
	/* received: the kernel has set the interface it came in on */
	i_ldx(g, BPF_W, BPF_REG_0, R_CTX, offsetof(struct __sk_buff, ingress_ifindex));
	i_bool(g, BPF_REG_0);
	i_stx(g, BPF_B, BPF_REG_9, offsetof(struct cgf_event, ingress), BPF_REG_0);
	for (i = 0; i < 2; i++) {
		i_ldx(g, BPF_DW, BPF_REG_0, BPF_REG_10, (int16_t)(FP_SADDR + 8 * i));
		i_stx(g, BPF_DW, BPF_REG_9, (int16_t)(offsetof(struct cgf_event, saddr) + 8 * i), BPF_REG_0);
		i_ldx(g, BPF_DW, BPF_REG_0, BPF_REG_10, (int16_t)(FP_DADDR + 8 * i));
		i_stx(g, BPF_DW, BPF_REG_9, (int16_t)(offsetof(struct cgf_event, daddr) + 8 * i), BPF_REG_0);
	}
	/* the executable, if the filter left it */
	{
		uint32_t no_exe = cgf_asm_label(g->a), have = cgf_asm_label(g->a);

		i_st(g, BPF_DW, BPF_REG_9, offsetof(struct cgf_event, exe_dev), 0);
		i_st(g, BPF_DW, BPF_REG_9, offsetof(struct cgf_event, exe_ino), 0);
		i_ldx(g, BPF_W, BPF_REG_0, R_CTX, CB(3));
		cgf_asm_jmp_imm(g->a, BPF_JSET, BPF_REG_0, CGF_CB_EXE, have);
		cgf_asm_ja(g->a, no_exe);
		cgf_asm_place(g->a, have);
		cgf_asm_ld_map(g->a, BPF_REG_1, g->m_scratch);
		i_fp(g, BPF_REG_2, FP_ZERO);
		i_call(g, BPF_FUNC_map_lookup_elem);
		cgf_asm_jmp_imm(g->a, BPF_JEQ, BPF_REG_0, 0, no_exe);
		i_ldx(g, BPF_DW, BPF_REG_1, BPF_REG_0, 0);
		i_stx(g, BPF_DW, BPF_REG_9, offsetof(struct cgf_event, exe_dev), BPF_REG_1);
		i_ldx(g, BPF_DW, BPF_REG_1, BPF_REG_0, 8);
		i_stx(g, BPF_DW, BPF_REG_9, offsetof(struct cgf_event, exe_ino), BPF_REG_1);
		cgf_asm_place(g->a, no_exe);
	}
	i_movr(g, BPF_REG_1, BPF_REG_9);
	i_mov(g, BPF_REG_2, 0);
	i_call(g, BPF_FUNC_ringbuf_submit);
	gen_count(g, CGF_ST_EVENTS, false);
	cgf_asm_ja(g->a, done);
	cgf_asm_place(g->a, suppressed);
	gen_count(g, CGF_ST_SUPPRESSED, false);
	cgf_asm_place(g->a, done);
}

int cgf_gen_drop(const struct cgf_gen_env *env, struct cgf_gen *out, char *why, size_t whylen)
{
	struct gen g = { .why = why, .whylen = whylen };
	uint32_t counted, not_nofilter, would, not_would_malformed, pass;

	gen_begin(&g, out, env);
	counted = cgf_asm_label(g.a);
	not_nofilter = cgf_asm_label(g.a);
	would = cgf_asm_label(g.a);
	not_would_malformed = cgf_asm_label(g.a);
	pass = cgf_asm_label(g.a);
	gen_prologue(&g);
	i_mov(&g, BPF_REG_0, 0);
	i_stx(&g, BPF_DW, BPF_REG_10, FP_MALFORMED, BPF_REG_0);
	i_ldx(&g, BPF_W, BPF_REG_0, R_CTX, CB(3));
	i_alu(&g, BPF_AND, BPF_REG_0, CGF_CB_REASON);
	cgf_asm_jmp_imm(g.a, BPF_JGE, BPF_REG_0, CGF_WOULD_FILTER, would);
	gen_count(&g, CGF_ST_DROP_PKTS, true);
	i_ldx(&g, BPF_W, BPF_REG_0, R_CTX, CB(3));
	i_alu(&g, BPF_AND, BPF_REG_0, CGF_CB_REASON);
	cgf_asm_jmp_imm(g.a, BPF_JNE, BPF_REG_0, CGF_DROP_MALFORMED, not_nofilter);
	i_st(&g, BPF_DW, BPF_REG_10, FP_MALFORMED, 1);
	gen_count(&g, CGF_ST_MALFORMED, false);
	cgf_asm_ja(g.a, counted);
	cgf_asm_place(g.a, not_nofilter);
	cgf_asm_jmp_imm(g.a, BPF_JNE, BPF_REG_0, CGF_DROP_NOFILTER, counted);
	gen_count(&g, CGF_ST_NOFILTER, false);
	cgf_asm_ja(g.a, counted);

	cgf_asm_place(g.a, would);
	cgf_asm_note(g.a, "observe mode: it passes; count what would have been dropped");
	gen_count(&g, CGF_ST_WOULD_PKTS, true);
	gen_count(&g, CGF_ST_PASS_PKTS, true);
	i_ldx(&g, BPF_W, BPF_REG_0, R_CTX, CB(3));
	i_alu(&g, BPF_AND, BPF_REG_0, CGF_CB_REASON);
	cgf_asm_jmp_imm(g.a, BPF_JNE, BPF_REG_0, CGF_WOULD_MALFORMED, not_would_malformed);
	i_st(&g, BPF_DW, BPF_REG_10, FP_MALFORMED, 1);
	cgf_asm_place(g.a, not_would_malformed);

	cgf_asm_place(g.a, counted);
	gen_report_drop(&g);
	/* 1 (pass) in observe mode, else 0 */
	i_ldx(&g, BPF_W, BPF_REG_1, R_CTX, CB(3));
	i_alu(&g, BPF_AND, BPF_REG_1, CGF_CB_REASON);
	i_mov(&g, BPF_REG_0, 1);
	cgf_asm_jmp_imm(g.a, BPF_JGE, BPF_REG_1, CGF_WOULD_FILTER, pass);
	i_mov(&g, BPF_REG_0, 0);
	cgf_asm_place(g.a, pass);
	i_exit(&g);
	return gen_finish(&g);
}
