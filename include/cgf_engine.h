/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The cgfilter engine as both sides see it: the instruction format of a
 * compiled filter, the maps that hold it, counters and drop events.  Shared
 * by cgfilter/cgfilter.bpf.c (which runs compiled filters) and
 * cgfilter/compile.c, cgfilter/cgfilter.c (which write them).
 *
 * A compiled filter is a forward-only branching program over 64-bit
 * registers.  Registers 0 .. CGF_NFIELDS-1 hold the packet's fields
 * (enum cgf_field, host order, filled by cgf_parse()); the others are
 * scratch.  Every jump goes forward, so a program of N instructions runs at
 * most N steps; it ends by jumping to CGF_PC_PASS or CGF_PC_DROP.
 *
 * Example: 'icmp || (udp && dst_port == 53)' compiles to
 *   0: jne  r4 (icmp), 0        -> PASS, 1
 *   1: jne  r3 (udp), 0         -> 2, DROP
 *   2: jeq  r6 (dst_port), 53   -> PASS, DROP
 * (as 'cgfilter compile' prints it).
 *
 * Every field of these structs is in host byte order except the addresses
 * of struct cgf_lpm_key and struct cgf_event, which are in network order as
 * on the wire (IPv4 in the first 4 bytes, the rest zero).
 */
#ifndef CGF_ENGINE_H
#define CGF_ENGINE_H

#include <linux/types.h>

#include "cgf_vocab.h"

#define CGF_NREGS 28            /* fields + scratch registers (stack-bound) */
#define CGF_MAX_INSNS 2048      /* per filter */
#define CGF_PC_PASS 0xffff      /* jump target: pass the packet */
#define CGF_PC_DROP 0xfffe      /* jump target: drop the packet */

/*
 * Opcodes.  The operand of a two-operand instruction is k, or r[b] when
 * the opcode has CGF_X set.
 */
enum cgf_opcode {
	/* if (r[a] CMP operand) pc = jt; else pc = jf; */
	CGF_JEQ = 1,
	CGF_JNE,
	CGF_JLT,
	CGF_JLE,
	CGF_JGT,
	CGF_JGE,
	CGF_JSET,      /* r[a] & operand != 0 */
	CGF_JIN_BITS,  /* r[a] in integer set k (bitmap); never with CGF_X */
	CGF_JIN_LPM,   /* address a (0 src_ip, 1 dst_ip) in address set k */
	CGF_JA,        /* pc = jt */
	/* r[dst] = r[a] OP operand; pc + 1 */
	CGF_ADD,
	CGF_SUB,
	CGF_MUL,
	CGF_DIV,       /* x / 0 == 0 */
	CGF_MOD,       /* x % 0 == x */
	CGF_AND,
	CGF_OR,
	CGF_XOR,
	CGF_LSH,       /* shift count modulo 64 */
	CGF_RSH,
	CGF_MOV,       /* r[dst] = operand */
	CGF_NEG,       /* r[dst] = -r[a] */
	/* r[dst] = (r[a] CMP operand) ? 1 : 0 */
	CGF_SEQ,
	CGF_SNE,
	CGF_SLT,
	CGF_SLE,
	CGF_SGT,
	CGF_SGE,
	CGF_NOPCODES
};
#define CGF_X 0x80

struct cgf_insn {
	__u8 op;        /* enum cgf_opcode */
	__u8 dst;       /* destination register */
	__u8 a;         /* first operand register (address: 0 src, 1 dst) */
	__u8 b;         /* second operand register (_X forms) */
	__u16 jt, jf;   /* jump targets: instruction index or CGF_PC_* */
	__u64 k;        /* constant operand, or set id */
};                      /* 16 bytes: pc * 16 finds an instruction */

/* One compiled filter.  ninsn == 0 means "no filter": drop. */
struct cgf_code {
	__u32 ninsn;
	__u32 gen;      /* bumped by every 'cgfilter set', shown by 'show' */
	struct cgf_insn insn[CGF_MAX_INSNS];
};

/*
 * Integer sets are bitmaps of 65536 bits (ports, ICMP types, ...): set id s
 * occupies words s * CGF_BITS_WORDS .. + CGF_BITS_WORDS - 1 of the "bits"
 * array; bit v is (word[v / 64] >> (v % 64)) & 1.  A value above 65535 is in
 * no set.
 */
#define CGF_BITS_WORDS 1024
#define CGF_DEF_INT_SETS 64     /* default number of integer sets */

/*
 * Address sets share one LPM trie.  A key is the set tag (set id * 2, + 1
 * for IPv6) followed by the address: prefixlen = 32 + prefix length.
 */
struct cgf_lpm_key {
	__u32 prefixlen;
	__u32 tag;       /* host order; always matched whole (prefixlen >= 32) */
	__u8 addr[16];   /* network order */
};
#define CGF_DEF_LPM_ENTRIES (1u << 16)  /* --lpm-entries: prefixes of all sets */

/*
 * An LPM lookup gets slower as the trie grows, so address sets are also
 * kept as one hash per prefix length: "ahash" holds every prefix of every
 * set with its host bits cleared, and "alens" lists, for each set tag, the
 * prefix lengths it holds, longest first.  A lookup then costs one hash
 * lookup per distinct length, whatever the number of prefixes.  A set with
 * more than CGF_MAX_PLENS distinct lengths (n == CGF_PLENS_LPM) is looked
 * up in the trie.  A tag with no "alens" entry is an empty set.
 */
#define CGF_MAX_PLENS 8
#define CGF_PLENS_LPM 0xff
struct cgf_alens {
	__u8 n;                       /* lengths in len[], or CGF_PLENS_LPM */
	__u8 len[CGF_MAX_PLENS];      /* longest first */
	__u8 pad[7];
	__u32 mask[CGF_MAX_PLENS][4]; /* of each length, network order */
};
struct cgf_ahash_key {
	__u32 tag;                    /* as in struct cgf_lpm_key */
	__u32 plen;
	__u32 addr[4];                /* network order, host bits zero */
};

/* The "stats" per-CPU array, one entry: packets and bytes by verdict. */
enum cgf_stat {
	CGF_ST_PASS_PKTS,
	CGF_ST_PASS_BYTES,
	CGF_ST_DROP_PKTS,
	CGF_ST_DROP_BYTES,
	CGF_ST_MALFORMED,   /* dropped because the headers are malformed */
	CGF_ST_NOFILTER,    /* dropped because no filter is set (shared mode) */
	CGF_ST_EVENTS,      /* drop events sent to the ring buffer (while monitored) */
	CGF_ST_SUPPRESSED,  /* drop events held back by the rate limit */
	CGF_NSTATS
};
struct cgf_stats {
	__u64 v[CGF_NSTATS];    /* per CPU: sum them */
};

/* A dropped packet, as 'cgfilter monitor' shows it. */
struct cgf_event {
	__u64 time_ns;      /* bpf_ktime_get_ns() */
	__u64 cgroup_id;    /* of the socket's cgroup */
	__u32 len;
	__u8 family;        /* 4, 6 or 0 */
	__u8 proto;
	__u8 malformed;
	__u8 pad;
	__u16 sport, dport; /* host order */
	__u8 icmp_type, icmp_code, tcp_flags, pad2;
	__u8 saddr[16], daddr[16];  /* network order */
};

/* Load-time settings (rodata). */
struct cgf_config {
	__u32 int_sets;           /* integer sets the bits map holds */
	__u32 events_per_sec;     /* per CPU; 0 disables drop events */
};

/*
 * The "ctl" array, one entry: run-time switches set by the cgfilter command.
 * Drop events are produced only while a 'cgfilter monitor' runs: each one
 * renews a lease every second, and the engine produces events only until
 * the lease ends (CLOCK_MONOTONIC, as bpf_ktime_get_ns()), so a monitor
 * killed with SIGKILL stops them within CGF_MONITOR_LEASE_NS.
 */
#define CGF_MONITOR_LEASE_NS (3ULL * 1000000000ULL)
struct cgf_ctl {
	__u64 monitor_until_ns;
};

/* Rate limit state of drop events, per CPU. */
struct cgf_ratelimit {
	__u64 last_ns;
	__u64 tokens;
};

/*
 * Bookkeeping for the cgfilter command, kept in maps beside the program so
 * that any later command (and any host without the source tree) can read
 * it.  The BPF side never reads these.
 */
#define CGF_MAGIC 0x43474631     /* "CGF1" */
enum cgf_mode {
	CGF_MODE_DEDICATED = 1,  /* one filter for every attached cgroup */
	CGF_MODE_SHARED = 2,     /* a filter per cgroup, registered by the unit */
};

/* The "meta" array, one entry. */
struct cgf_meta {
	__u32 magic;
	__u32 mode;              /* enum cgf_mode */
	__u32 gen;               /* filters set so far */
	__u32 text_len;          /* of the filter text in the "text" map */
	__u32 int_sets;          /* capacity of the bits map */
	__u32 next_addr_set;     /* address set ids are never reused */
	__u64 set_time_ns;       /* CLOCK_REALTIME of the last change */
};

/*
 * The "text" hash: the text of each filter in chunks 0, 1, ... of its owner
 * (0 in dedicated mode, the cgroup id in shared mode) and generation (the
 * gen of its struct cgf_code): 'show' prints the text of the generation in
 * force, so what it shows is what runs even if a command died half-way.
 */
#define CGF_TEXT_CHUNK 4096
#define CGF_TEXT_CHUNKS 4096     /* so a filter text is at most 16 MiB */
struct cgf_text_key {
	__u64 owner;
	__u32 gen;
	__u32 chunk;
};
struct cgf_text_chunk {
	__u32 len;
	char data[CGF_TEXT_CHUNK];
};

/*
 * The "sets" hash: every set the engine holds, by name.  Named sets are
 * "@name"; the literal sets of a filter are "#ID" (dedicated mode) or
 * "#CGROUPID:ID" (shared mode, owned by that cgroup).
 */
#define CGF_SET_KEY_LEN 80       /* "@" and a 63-character name, or "#ID:..." */
struct cgf_set_key {
	char name[CGF_SET_KEY_LEN];
};
struct cgf_set_rec {
	__u32 id;
	__u32 type;              /* 0 integers, 1 addresses */
	__u64 owner;             /* cgroup id, shared mode literal sets */
	__u64 nelem;
};

#endif /* CGF_ENGINE_H */
