/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What a cgfilter engine's programs and the cgfilter command share: the
 * maps pinned in PIN_maps/, the layout of their values, and the metadata
 * each generated filter program carries.  The programs are written as BPF
 * instructions by lang/emit_bpf.c (no C compiler on the host), so "the BPF
 * side" of this header is the code generator: it reads these structs with
 * offsetof().
 *
 * An engine pinned at PIN:
 *   PIN                 the entry program (cgroup_skb): what units name with
 *                       IPIngressFilterPath= / IPEgressFilterPath=.  It
 *                       parses the packet, leaves its fields in skb->cb
 *                       (below) and tail-calls the filter in force.
 *   PIN_maps/slots      BPF_MAP_TYPE_PROG_ARRAY: slot 0 holds the drop
 *                       program (counts a drop, reports it to a monitor),
 *                       the others the filters.  Dedicated mode: slot 1 is
 *                       the filter in force.  Shared mode: the slot of each
 *                       cgroup is in the entry program's cgroup storage (0:
 *                       none, so its packets go to the drop program).
 *   PIN_maps/drops      a program array of one slot: the drop program,
 *                       for filters to tail-call (a shared engine's entry
 *                       program has cgroup storage, and the kernel then
 *                       refuses a program without it that uses its array)
 *   PIN_maps/stats      per-CPU array, 1 entry: struct cgf_stats
 *   PIN_maps/ctl        array, 1 entry: struct cgf_ctl (drop event switch)
 *   PIN_maps/ratelimit  per-CPU array, 1 entry: struct cgf_ratelimit
 *   PIN_maps/events     ring buffer of struct cgf_event
 *   PIN_maps/scratch    per-CPU array, 1 entry: struct cgf_exe_id, from a
 *                       filter to the drop program (cb[3] CGF_CB_EXE)
 *   PIN_maps/cgroups    shared mode only: the entry program's cgroup storage
 *                       (__u32 slot of the cgroup's filter; 0: none)
 *   PIN_maps/set_NAME   a named set (see below)
 *
 * Byte order: every field is in host order except addresses, which are in
 * network order as on the wire (IPv4 in the first 4 bytes, the rest 0).
 */
#ifndef CGF_ABI_H
#define CGF_ABI_H

#include <linux/types.h>

/* Slots of PIN_maps/slots. */
#define CGF_SLOT_DROP 0
#define CGF_SLOT_DEDICATED 1

/*
 * What the entry program leaves in skb->cb for the filter and the drop
 * program (the kernel saves cb around a cgroup program and clears it
 * before): the packet's fields (include/cgf_vocab.h), packed; len is
 * skb->len and the addresses are read from the packet itself.
 *   cb[0]  src_port | dst_port << 16
 *   cb[1]  ip_proto | icmp_type << 8 | icmp_code << 16 | tcp_flags << 24
 *   cb[2]  ttl | CGF_CB_* flags << 8 | family (4, 6 or 0) << 16
 *   cb[3]  why the drop program runs (enum cgf_reason); bits 16-31 are 0,
 *          and the programs read the drop program's slot from there, so the
 *          verifier does not know it: the JIT then makes an indirect jump,
 *          where a known slot is a direct jump it must patch (a fraction of a
 *          millisecond) whenever a program that jumps there is loaded.  The
 *          entry program's jump to the filter in force is direct: fast for
 *          every packet, patched once per 'cgfilter set'.
 *   cb[4]  len
 */
#define CGF_CB_IP    0x01
#define CGF_CB_IPV6  0x02
#define CGF_CB_TCP   0x04
#define CGF_CB_UDP   0x08
#define CGF_CB_ICMP  0x10
#define CGF_CB_FRAG  0x20
#define CGF_CB_DROP_SHIFT 16      /* cb[3]: 0, the drop program's slot */
#define CGF_CB_REASON 0xff        /* cb[3]: the reason (enum cgf_reason) */
#define CGF_CB_EXE 0x100          /* cb[3]: the filter left the packet's executable
				   * in PIN_maps/scratch (struct cgf_exe_id) */
enum cgf_reason {
	CGF_DROP_FILTER = 1,    /* the filter said so */
	CGF_DROP_MALFORMED,     /* the headers are malformed */
	CGF_DROP_NOFILTER,      /* no filter in force */
	CGF_DROP_BLOCK,         /* the filter is in block mode */
	CGF_WOULD_FILTER,       /* observe mode: the filter would drop it (it passes) */
	CGF_WOULD_MALFORMED,    /* observe mode: malformed, would be dropped (it passes) */
};

/*
 * What a filter program does with the filter's verdict (cgfilter mode):
 * its mode is made into the program, so a mode changes as a filter does,
 * in one slot update, and 'set' keeps it (it reads it from the program in
 * force, struct cgf_info).  A malformed packet reaches the filter program
 * too (cb[3] = CGF_DROP_MALFORMED), so observe and pass modes pass it.
 */
enum cgf_run_mode {
	CGF_RUN_ENFORCE,        /* pass what the filter passes, drop the rest */
	CGF_RUN_OBSERVE,        /* pass everything; count and report what it would drop */
	CGF_RUN_BLOCK,          /* drop everything */
	CGF_RUN_PASS,           /* pass everything */
	CGF_RUN_NMODES
};

/* The "stats" per-CPU array: packets and bytes by verdict.  Bytes count
 * from the IP header on (skb->len). */
enum cgf_stat {
	CGF_ST_PASS_PKTS,
	CGF_ST_PASS_BYTES,
	CGF_ST_DROP_PKTS,
	CGF_ST_DROP_BYTES,
	CGF_ST_MALFORMED,   /* dropped because the headers are malformed */
	CGF_ST_NOFILTER,    /* dropped because no filter is in force */
	CGF_ST_EVENTS,      /* drop events sent to the ring buffer */
	CGF_ST_SUPPRESSED,  /* drop events held back (rate limit, full ring) */
	CGF_ST_WOULD_PKTS,  /* observe mode: passed, but the filter would drop them */
	CGF_ST_WOULD_BYTES,
	CGF_NSTATS
};
struct cgf_stats {
	__u64 v[CGF_NSTATS];    /* per CPU: sum them */
};

/*
 * The "ctl" array, one entry.  Drop events are produced only while a
 * 'cgfilter monitor' runs: each renews a lease every second, and the
 * filters make events only until it ends (CLOCK_MONOTONIC, as
 * bpf_ktime_get_ns()), so a monitor killed with SIGKILL stops them within
 * CGF_MONITOR_LEASE_NS.  events_per_sec is set at load (--events-per-sec).
 */
#define CGF_MONITOR_LEASE_NS (3ULL * 1000000000ULL)
struct cgf_ctl {
	__u64 monitor_until_ns;
	__u32 events_per_sec;     /* per CPU; 0: never any event */
	__u32 monitor_pid;        /* the monitor holding the lease: one at a
				   * time, since monitors would split the
				   * events of the ring between them */
};

/* Rate limit state of drop events, per CPU. */
struct cgf_ratelimit {
	__u64 last_ns;
	__u64 tokens;
};

/* A dropped packet, as 'cgfilter monitor' shows it. */
struct cgf_event {
	__u64 time_ns;      /* bpf_ktime_get_ns() */
	__u64 cgroup_id;    /* of the socket's cgroup */
	__u32 len;
	__u8 family;        /* 4, 6 or 0 */
	__u8 proto;
	__u8 malformed;
	__u8 reason;        /* enum cgf_reason: CGF_WOULD_*: passed in observe mode */
	__u16 sport, dport; /* host order */
	__u8 icmp_type, icmp_code, tcp_flags;
	__u8 ingress;       /* 1: received (ingress_ifindex set), 0: sent */
	__u8 saddr[16], daddr[16];  /* network order */
	__u64 exe_dev, exe_ino;     /* the executable that made the socket, when
				     * the filter names executables; else 0 */
};

/*
 * Named sets.  PIN_maps/set_NAME is an array of maps with one slot, which
 * holds the set's contents: editing a set builds new contents and puts
 * them in the slot with one update, so a packet sees the old set or the new
 * one, never half an edit.
 *  - addresses: an LPM trie keyed by struct cgf_lpm_key, value __u8 1.
 *    Filters do not look it up: they compile its addresses in, as a
 *    literal set's, and the engine builds them again when it changes; a
 *    filter keeps the contents it compiled (CGF_INFO_SNAPS).
 *    The host names in the set ride in the same trie, under family
 *    CGF_LPM_NAMES (no packet has it, so none matches them): key pad[0..2]
 *    is the index (pad[0] << 16 | pad[1] << 8 | pad[2]), addr the next 16
 *    bytes of a text of lines "NAME EXPIRES ADDR ...\n" (as CGF_INFO_NAMES),
 *    then a line "+ ADDR ..." of the names' addresses also added by
 *    themselves, padded with 0 bytes; prefixlen 160.
 *  - integers (0..65535): an array of one CGF_BITMAP_BYTES bitmap, bit v
 *    is (word[v / 64] >> (v % 64)) & 1
 */
#define CGF_BITMAP_BYTES 8192
#define CGF_LPM_MAX_PREFIXES (1u << 24)   /* per named address set */
#define CGF_LPM_NAMES 0xff
struct cgf_lpm_key {
	__u32 prefixlen;   /* 32 + prefix length: the family word is matched whole */
	__u8 family;       /* 4 or 6 */
	__u8 pad[3];
	__u8 addr[16];     /* network order */
};

/*
 * Every filter program carries its description in a map bound to it (an
 * array, frozen, read-only for programs), "cgf_info": what 'show' prints
 * is read from the program in force, so it is by construction what runs.
 * Entry 0 starts with struct cgf_info; the named sets the filter uses
 * follow, then the filter's text; the rest of the text continues in the
 * next entries.
 */
#define CGF_INFO_MAGIC 0x43474633        /* "CGF3" */
#define CGF_INFO_CHUNK 4096              /* bytes per entry */
#define CGF_SET_NAME_LEN 64              /* a name of up to 63 characters */
struct cgf_info {
	__u32 magic;
	__u32 gen;          /* bumped by every change of the filter */
	__u64 time_ns;      /* CLOCK_REALTIME when it was made */
	__u64 owner;        /* shared mode: the cgroup's id; 0 otherwise */
	__u32 text_len;
	__u32 nsets;        /* struct cgf_info_set entries after this */
	__u32 mode;         /* enum cgf_run_mode */
	__u32 flags;        /* CGF_INFO_* */
};
#define CGF_INFO_LEARNING 1     /* it records flows for cgfilter learn */
#define CGF_INFO_NAMES 2        /* after the text: a __u32 length, then the
				 * host names of its literal sets and their
				 * addresses, as text: one line a name,
				 * "NAME EXPIRES ADDR ADDR ...\n" (EXPIRES:
				 * CLOCK_REALTIME seconds, when cgfilter
				 * refresh resolves it again) */
#define CGF_INFO_SNAPS 4        /* then (after the names, if any) a __u32
				 * count (nsets) and, for each set, the id of
				 * an array of maps bound to the program that
				 * holds the contents it compiled in (0 for
				 * a set looked up in the engine's map) */

/*
 * cgfilter learn: a filter program made to record the flows it sees into an
 * LRU hash map of its own (the filter's verdicts are unchanged), the
 * service's side and the peer's side of each packet.  For ICMP, local_port
 * is the type and remote_port the code.
 */
#define CGF_LEARN_ENTRIES 65536
struct cgf_learn_key {
	__u8 family;        /* 4 or 6 */
	__u8 proto;
	__u8 ingress;       /* 1: received, 0: sent */
	__u8 pad;
	__u16 local_port, remote_port;  /* host order */
	__u8 remote[16];    /* network order */
};
struct cgf_learn_val {
	__u64 packets;
	__u64 flags;        /* CGF_LEARN_SYN: a SYN without ACK was among them */
};
#define CGF_LEARN_SYN 1
struct cgf_info_set {
	char name[CGF_SET_NAME_LEN];
	__u32 map_id;       /* of PIN_maps/set_NAME when the filter was made */
	__u32 type;         /* 0 integers, 1 addresses */
};

/*
 * Executables (exe in a filter).  A cgroup/sock_create program attached at
 * the cgroup2 root records, for every socket made, the executable of the
 * process that made it in socket local storage (a BPF_MAP_TYPE_SK_STORAGE
 * map, cloned to accepted sockets); filter programs read it back.  Both are
 * pinned under CGF_EXE_DIR, once for the host.  dev is the file system's
 * s_dev (major << 20 | minor), ino the inode number.
 */
#define CGF_EXE_DIR "/sys/fs/bpf/cgfilter-exe"
struct cgf_exe_id {
	__u64 dev;
	__u64 ino;
};

#endif /* CGF_ABI_H */
