// SPDX-License-Identifier: GPL-2.0-only
/*
 * The cgfilter engine: a cgroup_skb program that parses a packet once and
 * runs a compiled filter (include/cgf_engine.h) kept in a map, so the filter
 * changes without reloading or re-attaching the program.
 *
 * Two entry points over one implementation:
 *  - cgf_filter: one filter for every cgroup it is attached to, held in
 *    "code" (see below): a packet runs either the old or the new filter,
 *    never a mix.
 *  - cgf_shared: a filter per cgroup, held in cgroup storage keyed by the
 *    cgroup it is attached to; the kernel frees it with the attachment.  A
 *    cgroup without a registered filter drops everything (fails closed).
 * Neither sets an expected attach type: one pin serves ingress and egress.
 */
#define CGF_PKT_REGS CGF_NREGS
#include "cgf_engine.h"
#include "cgf_parse.bpf.h"

const volatile struct cgf_config cfg = {
	.int_sets = CGF_DEF_INT_SETS,
	.events_per_sec = 100,
};

/*
 * Dedicated mode keeps two filters, the one in force (cgf_active) and the
 * next: 'cgfilter set' writes the next one, flips cgf_active and then waits
 * for an RCU grace period (an update of "grace", an array of maps, returns
 * only after one), so a slot is never rewritten while a packet still runs
 * it.  cgf_active is a global variable and "code" an array: reading them
 * takes no helper call (the verifier inlines constant-map array lookups).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct cgf_code);
} code SEC(".maps");

struct grace_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} grace_slot SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct grace_inner);
} grace SEC(".maps") = {
	.values = { [0] = &grace_slot },
};

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_STORAGE);
	__type(key, struct bpf_cgroup_storage_key);
	__type(value, struct cgf_code);
} shared_code SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, CGF_DEF_LPM_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct cgf_lpm_key);
	__type(value, __u8);
} lpm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CGF_DEF_LPM_ENTRIES); /* set at load */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct cgf_ahash_key);
	__type(value, __u8);
} ahash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);   /* address sets * 2 */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct cgf_alens);
} alens SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CGF_DEF_INT_SETS * CGF_BITS_WORDS); /* set at load */
	__type(key, __u32);
	__type(value, __u64);
} bits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cgf_stats);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cgf_ratelimit);
} ratelimit SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cgf_ctl);
} ctl SEC(".maps");

/* Bookkeeping of the cgfilter command (see cgf_engine.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cgf_meta);
} meta SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CGF_TEXT_CHUNKS);   /* a filter text of 16 MiB */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct cgf_text_key);
	__type(value, struct cgf_text_chunk);
} text SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct cgf_set_key);
	__type(value, struct cgf_set_rec);
} sets SEC(".maps");

#ifndef CGF_INLINE_STEPS
#define CGF_INLINE_STEPS 4
#endif

struct cgf_vm {
	struct cgf_pkt p;              /* fields, then scratch registers */
	const struct cgf_code *code;
	__u32 pc;
	__u32 verdict;
};

static __always_inline int cgf_in_bits(__u64 v, __u64 set)
{
	__u32 idx;
	__u64 *w;

	if (v > 65535 || set >= cfg.int_sets)
		return 0;
	idx = (__u32)set * CGF_BITS_WORDS + (__u32)(v >> 6);
	w = bpf_map_lookup_elem(&bits, &idx);
	return w && ((*w >> (v & 63)) & 1);
}

static __always_inline int cgf_in_lpm(const struct cgf_vm *vm, __u8 which, __u64 set)
{
	const __u32 *addr = which ? vm->p.daddr : vm->p.saddr;
	struct cgf_ahash_key hk;
	struct cgf_lpm_key key;
	struct cgf_alens *l;
	__u32 tag;
	int i;

	if (vm->p.family != 4 && vm->p.family != 6)
		return 0;
	tag = (__u32)set * 2 + (vm->p.family == 6);
	l = bpf_map_lookup_elem(&alens, &tag);
	if (!l)
		return 0;
	if (l->n == CGF_PLENS_LPM) {
		key.prefixlen = 32 + (vm->p.family == 4 ? 32 : 128);
		key.tag = tag;
		__builtin_memcpy(key.addr, addr, 16);
		return bpf_map_lookup_elem(&lpm, &key) != NULL;
	}
	hk.tag = tag;
#pragma unroll
	for (i = 0; i < CGF_MAX_PLENS; i++) {
		if (i >= l->n)
			break;
		hk.plen = l->len[i];
		hk.addr[0] = addr[0] & l->mask[i][0];
		hk.addr[1] = addr[1] & l->mask[i][1];
		hk.addr[2] = addr[2] & l->mask[i][2];
		hk.addr[3] = addr[3] & l->mask[i][3];
		if (bpf_map_lookup_elem(&ahash, &hk))
			return 1;
	}
	return 0;
}

/* One instruction; returns 1 to stop. */
static __always_inline long cgf_exec(struct cgf_vm *vm)
{
	const struct cgf_insn *in;
	__u64 *r = vm->p.f;
	__u32 pc = vm->pc, next;
	__u64 a, b, v;
	__u32 ra, rb, rd;
	int cond;
	__u8 op;

	if (pc >= CGF_MAX_INSNS)
		return 1;
	in = &vm->code->insn[pc];
	op = in->op;
	ra = in->a;
	if (ra >= CGF_NREGS)
		return 1; /* cgfilter never writes such code */
	a = r[ra];
	/* the tests most filters are made of, before the general dispatch */
	if (op == CGF_JNE) {
		cond = a != in->k;
		goto jump;
	}
	if (op == CGF_JEQ) {
		cond = a == in->k;
		goto jump;
	}
	rb = in->b;
	rd = in->dst;
	if (rb >= CGF_NREGS || rd >= CGF_NREGS)
		return 1;
	b = (op & CGF_X) ? r[rb] : in->k;

	switch (op & ~CGF_X) {
	case CGF_JEQ: cond = a == b; goto jump;
	case CGF_JNE: cond = a != b; goto jump;
	case CGF_JLT: cond = a < b; goto jump;
	case CGF_JLE: cond = a <= b; goto jump;
	case CGF_JGT: cond = a > b; goto jump;
	case CGF_JGE: cond = a >= b; goto jump;
	case CGF_JSET: cond = (a & b) != 0; goto jump;
	case CGF_JIN_BITS: cond = cgf_in_bits(a, in->k); goto jump;
	case CGF_JIN_LPM: cond = cgf_in_lpm(vm, in->a, in->k); goto jump;
	case CGF_JA: cond = 1; goto jump;
	case CGF_ADD: v = a + b; break;
	case CGF_SUB: v = a - b; break;
	case CGF_MUL: v = a * b; break;
	case CGF_DIV: v = b ? a / b : 0; break;
	case CGF_MOD: v = b ? a % b : a; break;
	case CGF_AND: v = a & b; break;
	case CGF_OR: v = a | b; break;
	case CGF_XOR: v = a ^ b; break;
	case CGF_LSH: v = a << (b & 63); break;
	case CGF_RSH: v = a >> (b & 63); break;
	case CGF_MOV: v = b; break;
	case CGF_NEG: v = -a; break;
	case CGF_SEQ: v = a == b; break;
	case CGF_SNE: v = a != b; break;
	case CGF_SLT: v = a < b; break;
	case CGF_SLE: v = a <= b; break;
	case CGF_SGT: v = a > b; break;
	case CGF_SGE: v = a >= b; break;
	default:
		return 1; /* verdict stays DROP */
	}
	r[rd] = v;
	vm->pc = pc + 1;
	return 0;
jump:
	next = cond ? in->jt : in->jf;
	if (next == CGF_PC_PASS) {
		vm->verdict = CGF_PASS;
		return 1;
	}
	if (next <= pc) /* only forward: also catches CGF_PC_DROP */
		return 1;
	vm->pc = next;
	return 0;
}

static long cgf_step(__u64 i, void *ctx)
{
	return cgf_exec(ctx);
}

static __always_inline void cgf_count(__u32 idx, __u64 n)
{
	__u32 zero = 0;
	struct cgf_stats *st = bpf_map_lookup_elem(&stats, &zero);

	if (st && idx < CGF_NSTATS)
		st->v[idx] += n;
}

/* Count a verdict: one lookup for packets and bytes. */
static __always_inline void cgf_count_verdict(__u32 pkts_idx, __u64 bytes)
{
	__u32 zero = 0;
	struct cgf_stats *st = bpf_map_lookup_elem(&stats, &zero);

	if (st && pkts_idx + 1 < CGF_NSTATS) {
		st->v[pkts_idx] += 1;
		st->v[pkts_idx + 1] += bytes;
	}
}

/* At most cfg.events_per_sec drop events per second and CPU. */
static __always_inline void cgf_report_drop(struct __sk_buff *skb, const struct cgf_vm *vm,
					    int malformed)
{
	struct cgf_ratelimit *rl;
	struct cgf_ctl *watch;
	struct cgf_event *e;
	__u32 zero = 0;
	__u64 now;

	/* nobody ever watched: a drop costs no clock read and no ring space;
	 * a monitor's lease that ran out (it died): no events either */
	watch = bpf_map_lookup_elem(&ctl, &zero);
	if (!cfg.events_per_sec || !watch || !watch->monitor_until_ns)
		return;
	now = bpf_ktime_get_ns();
	if (now > watch->monitor_until_ns)
		return;
	rl = bpf_map_lookup_elem(&ratelimit, &zero);
	if (!rl)
		return;
	if (now - rl->last_ns >= 1000000000ULL) {
		rl->last_ns = now;
		rl->tokens = cfg.events_per_sec;
	}
	if (!rl->tokens) {
		cgf_count(CGF_ST_SUPPRESSED, 1);
		return;
	}
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		cgf_count(CGF_ST_SUPPRESSED, 1);
		return;
	}
	rl->tokens--;
	e->time_ns = now;
	e->cgroup_id = bpf_skb_cgroup_id(skb);
	e->len = skb->len;
	e->family = vm->p.family;
	e->proto = vm->p.f[CGF_F_IP_PROTO];
	e->malformed = malformed;
	e->pad = 0;
	e->sport = vm->p.f[CGF_F_SRC_PORT];
	e->dport = vm->p.f[CGF_F_DST_PORT];
	e->icmp_type = vm->p.f[CGF_F_ICMP_TYPE];
	e->icmp_code = vm->p.f[CGF_F_ICMP_CODE];
	e->tcp_flags = vm->p.f[CGF_F_TCP_FLAGS];
	e->pad2 = 0;
	__builtin_memcpy(e->saddr, vm->p.saddr, 16);
	__builtin_memcpy(e->daddr, vm->p.daddr, 16);
	bpf_ringbuf_submit(e, 0);
	cgf_count(CGF_ST_EVENTS, 1);
}

static __always_inline int cgf_run(struct __sk_buff *skb, const struct cgf_code *c)
{
	struct cgf_vm vm;
	int malformed = 0;

	vm.verdict = CGF_DROP;
	if (cgf_parse(skb, &vm.p)) {
		malformed = 1;
		cgf_count(CGF_ST_MALFORMED, 1);
	} else if (!c || !c->ninsn) {
		cgf_count(CGF_ST_NOFILTER, 1);
	} else {
		__u32 n = c->ninsn < CGF_MAX_INSNS ? c->ninsn : CGF_MAX_INSNS;
		int i;

		vm.code = c;
		vm.pc = 0;
		/* the first steps inline, the rest through bpf_loop: most
		 * filters end within a few instructions */
#pragma unroll
		for (i = 0; i < CGF_INLINE_STEPS; i++)
			if (cgf_exec(&vm))
				goto done;
		if (n > CGF_INLINE_STEPS)
			bpf_loop(n - CGF_INLINE_STEPS, cgf_step, &vm, 0);
	}
done:
	if (vm.verdict == CGF_PASS) {
		cgf_count_verdict(CGF_ST_PASS_PKTS, skb->len);
		return CGF_PASS;
	}
	cgf_count_verdict(CGF_ST_DROP_PKTS, skb->len);
	cgf_report_drop(skb, &vm, malformed);
	return CGF_DROP;
}

/* The slot of "code" in force: a global, read without a map lookup; the
 * cgfilter command writes it through the .bss map, pinned as "active". */
volatile __u32 cgf_active;

SEC("cgroup/skb")
int cgf_filter(struct __sk_buff *skb)
{
	__u32 slot = cgf_active & 1;

	return cgf_run(skb, bpf_map_lookup_elem(&code, &slot));
}

SEC("cgroup/skb")
int cgf_shared(struct __sk_buff *skb)
{
	return cgf_run(skb, bpf_get_local_storage(&shared_code, 0));
}

char LICENSE[] SEC("license") = "GPL";
