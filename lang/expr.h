/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The filter expression language: one parser for port-firewall's FILTER and
 * cgfilter's filters.  The grammar (EBNF) and the semantics are in
 * man/cgfilter.8; this header is the interface to the parsed tree.
 *
 * Values are unsigned 64-bit integers, arithmetic wraps modulo 2^64,
 * x / 0 == 0, x % 0 == x, shift counts are taken modulo 64, comparisons and
 * ! && || yield 0 or 1.  These are exactly the semantics of BPF's ALU64, so
 * the C that port-firewall compiles and the cgfilter engine agree.
 */
#ifndef CGF_EXPR_H
#define CGF_EXPR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cgf_vocab.h"

enum cgf_dialect {
	/* port-firewall: vocabulary scalars, integer literals, C operators
	 * and parentheses, nothing else */
	CGF_DIALECT_C,
	/* cgfilter: adds addresses, sets, named sets, 'in', '#' comments */
	CGF_DIALECT_FULL,
};

enum cgf_type {
	CGF_T_INT,
	CGF_T_ADDR,
	CGF_T_EXE,    /* an executable file (exe) */
};

/* The addresses: which one a CGF_N_ADDR node reads.  Local and remote are
 * dst and src on a packet received, src and dst on one sent (cgf_vocab.h). */
enum cgf_addr {
	CGF_A_SRC,
	CGF_A_DST,
	CGF_A_LOCAL,
	CGF_A_REMOTE,
};

enum cgf_node_kind {
	CGF_N_NUM,    /* val */
	CGF_N_FIELD,  /* field: enum cgf_field */
	CGF_N_ADDR,   /* field: enum cgf_addr (only under CGF_N_IN) */
	CGF_N_UNARY,  /* op a */
	CGF_N_BINARY, /* a op b */
	CGF_N_COND,   /* a ? b : c */
	CGF_N_IN,     /* a in set; for an address, a is CGF_N_ADDR */
	CGF_N_SETOP,  /* add(@set, a) (val 1) or del(@set, a) (val 0): 1, and a
		       * change of the dynamic set; for an address, a is CGF_N_ADDR */
	CGF_N_EXE,    /* the executable that made the packet's socket (only
		       * under CGF_N_IN) */
};

/* Operators; the unary ones use the same codes. */
enum cgf_op {
	CGF_OP_NONE,
	CGF_OP_LOR, CGF_OP_LAND,
	CGF_OP_BOR, CGF_OP_BXOR, CGF_OP_BAND,
	CGF_OP_EQ, CGF_OP_NE,
	CGF_OP_LT, CGF_OP_LE, CGF_OP_GT, CGF_OP_GE,
	CGF_OP_SHL, CGF_OP_SHR,
	CGF_OP_ADD, CGF_OP_SUB,
	CGF_OP_MUL, CGF_OP_DIV, CGF_OP_MOD,
	CGF_OP_NOT,   /* ! */
	CGF_OP_BNOT,  /* ~ */
	CGF_OP_NEG,   /* unary - */
};

/* An integer set element: the closed range lo..hi. */
struct cgf_range {
	uint64_t lo, hi;
};

/* An address set element: family 4 or 6, prefix length, address in network
 * order (IPv4 in the first 4 bytes), host bits zero. */
struct cgf_cidr {
	uint8_t family;
	uint8_t plen;
	uint8_t addr[16];
};

/*
 * An executable set element: a file, by its identity when the filter was
 * set (dev is the kernel's encoding of the file system's device, as in
 * struct super_block's s_dev: major << 20 | minor), and the path it was
 * named by.
 */
#define CGF_EXE_PATH_MAX 256    /* bytes, with the terminating 0 */
struct cgf_exe {
	uint64_t dev, ino;
	char path[CGF_EXE_PATH_MAX];
};
/* Resolve an absolute path to the file's identity: 0, or -errno with why. */
typedef int (*cgf_exe_resolve_fn)(const char *path, struct cgf_exe *out, char *why, size_t whylen);
int cgf_exe_resolve(const char *path, struct cgf_exe *out, char *why, size_t whylen);
/* The identity (dev, ino) the kernel records for the file open at fd: 0 or
 * -errno (then use stat()). */
int cgf_exe_identify_fd(int fd, struct cgf_exe *out);
/* Most executables in a literal set (a named set holds any number). */
#define CGF_EXE_LITERAL_MAX 64

/*
 * A host name in an address set ({ updates.example.org, 192.0.2.0/24 }):
 * letters, digits, '.' and '-' (labels of 1 to 63, not starting or ending
 * with '-'), at least one letter, at most CGF_HOST_MAX characters; a
 * trailing '.' writes a name that is also a field or keyword ("tcp.").  It
 * stands for the addresses it resolves to (cgf_parse_opts.resolve_name)
 * when the filter is set; they are appended to the set's cidrs.
 */
#define CGF_HOST_MAX 253
struct cgf_host {
	char name[CGF_HOST_MAX + 2];
	size_t first, n;        /* its addresses: cidrs[first .. first + n) */
};
/* A host name as it is kept and looked up: lower case, without a trailing
 * dot (Example.org. is example.org). */
void cgf_host_name_norm(char *s);
/* Whether s is a host name as above (why: what is wrong, if not). */
bool cgf_host_name_ok(const char *s, char *why, size_t whylen);

#define CGF_SET_NAME_MAX 63
/* Largest element of an integer set: sets are for ports, ICMP types, ... */
#define CGF_INT_SET_MAX 65535
/* A dynamic set: its longest timeout, its most entries (an add() to a full
 * set pushes out the entries used least recently) */
#define CGF_DYN_TIMEOUT_MAX 86400
#define CGF_DYN_ENTRIES 16384

struct cgf_set {
	char name[CGF_SET_NAME_MAX + 1]; /* "" for a literal { ... } set */
	enum cgf_type type;              /* of its elements */
	int declared;                    /* given contents in this filter text */
	int line, col;                   /* where it was declared or written */
	size_t n, cap;
	struct cgf_range *ranges;        /* CGF_T_INT */
	struct cgf_cidr *cidrs;          /* CGF_T_ADDR */
	struct cgf_exe *exes;            /* CGF_T_EXE */
	struct cgf_host *hosts;          /* CGF_T_ADDR: the host names written */
	size_t nhosts, hcap;
	uint32_t timeout;                /* seconds; not 0: a dynamic set, which the
					  * filter fills with add() and empties with
					  * del(), its entries expiring */
	uint64_t id;                     /* for cgfilter's compiler: where the set lives */
	int inlined;                     /* for cgfilter's compiler: tested in the code */
	struct cgf_set *next;
};

struct cgf_node {
	enum cgf_node_kind kind;
	enum cgf_op op;
	enum cgf_type type;
	uint64_t val;
	int field;
	struct cgf_node *a, *b, *c;
	struct cgf_set *set;
	int line, col;
	/* filled by the parser for every node: whether the subtree reads no
	 * packet field (and its value then), so back ends fold constants
	 * without walking subtrees again */
	int is_const;
	uint64_t cval;
	int effects;    /* the subtree changes a dynamic set (add, del): back
			 * ends evaluate it in order, && || ?: short-circuit */
	int aux;        /* free for a back end's own bookkeeping */
};

struct cgf_expr {
	struct cgf_node *root;
	struct cgf_set *sets;   /* literal and named sets, in order of appearance */
	size_t nnodes;
	struct cgf_arena *arena;
};

struct cgf_error {
	int line, col;      /* 1-based; 0 if not about a place in the text */
	int multiline;      /* the text had several lines: print the line too */
	char msg[512];
};

/* Named sets that exist outside the text (in a loaded cgfilter engine). */
typedef int (*cgf_set_lookup_fn)(const char *name, enum cgf_type *type, void *ctx);

/* The addresses of a host name written in set s: *addrs (malloc'd, *n of
 * them, host bits zero), or -1 with why (the resolver's reason). */
typedef int (*cgf_resolve_name_fn)(const char *name, const struct cgf_set *s,
				   struct cgf_cidr **addrs, size_t *n, char *why, size_t whylen,
				   void *ctx);

struct cgf_parse_opts {
	enum cgf_dialect dialect;
	cgf_set_lookup_fn lookup_set; /* may be NULL */
	void *lookup_ctx;
	int allow_decls;              /* '@name = { ... }' declarations allowed */
	int any_set;                  /* a named set neither declared nor known
				       * takes the type of its use ('compile') */
	cgf_exe_resolve_fn resolve_exe; /* NULL: cgf_exe_resolve() (stat) */
	cgf_resolve_name_fn resolve_name; /* NULL: host names are refused (only
					   * an engine resolves and refreshes them) */
	void *resolve_ctx;
};

/* Limits that keep a huge or hostile filter from exhausting the parser. */
#define CGF_EXPR_MAX_TEXT (16u << 20)   /* 16 MiB, what cgfilter stores */
#define CGF_EXPR_MAX_DEPTH 200
#define CGF_EXPR_MAX_NODES 100000

/* Returns 0, or -EINVAL with *err filled in (-ENOMEM on allocation failure). */
int cgf_expr_parse(const char *text, const struct cgf_parse_opts *opts,
		   struct cgf_expr **out, struct cgf_error *err);

/*
 * Visit every node below root children first (a, b, c), without recursion:
 * a chain such as 'len + len + ... + len' is a tree as deep as it is long,
 * up to CGF_EXPR_MAX_NODES.  Returns 0, -ENOMEM, or what fn returned
 * (non-zero stops the walk).
 */
int cgf_expr_postorder(struct cgf_node *root, int (*fn)(struct cgf_node *n, void *ctx),
		       void *ctx);
void cgf_expr_free(struct cgf_expr *e);

/* Write a C header defining
 *   static __always_inline __u64 FUNC(const struct cgf_pkt *p)
 * with the expression's value, well defined for every input: straight-line
 * code without a branch, one temporary per node, using the helpers of
 * include/cgf_expr.bpf.h, so any tree the parser allows compiles and
 * verifies.  Uses every node's aux.  Returns 0, -EINVAL for a tree with sets
 * or addresses (cgfilter's), -ENOMEM or -EIO; after an error f holds part of
 * the header. */
int cgf_expr_emit_c(const struct cgf_expr *e, const char *func, FILE *f);

/* One line: "column 12: unexpected ';'" (or "line 2, column 5: ..."). */
void cgf_error_format(const struct cgf_error *err, char *buf, size_t len);

/*
 * Under an error line, the part of the filter's line around the error with
 * a caret under the column (tabs kept, so the caret lines up), indented by
 * two spaces; at most about 100 characters of a long line.
 */
void cgf_error_show_place(FILE *f, const char *text, const struct cgf_error *err);
/* s for a message: its first 60 bytes, others than printable ASCII as \xNN,
 * "..." if cut (buf: 256 bytes are enough) */
const char *cgf_clip(const char *s, char *buf, size_t len);

/* The vocabulary (vocab.c): the parser's names, the help texts, the man
 * pages' list. */
struct cgf_vocab_entry {
	const char *name;
	int field;            /* enum cgf_field (addresses: enum cgf_addr); -1 for
			       * derived names */
	int addr;             /* 1 for src_ip, dst_ip, local_ip, remote_ip; 2 exe */
	uint8_t flag_mask;    /* derived tcp_* booleans: tcp_flags & mask */
	const char *help;     /* one line, for --help */
	const char *doc;      /* roff, for the man pages; NULL: as the entry above */
};
extern const struct cgf_vocab_entry cgf_vocab[];
extern const size_t cgf_vocab_len;
const char *cgf_field_name(int field);
const char *cgf_addr_name(int which);   /* enum cgf_addr */

/* Print the vocabulary: one name a line, the man pages' list (roff), or
 * the grammar's field production; addrs: with the addresses and exe. */
enum cgf_vocab_format { CGF_VOCAB_NAMES, CGF_VOCAB_MAN, CGF_VOCAB_GRAMMAR };
void cgf_vocab_print(FILE *f, enum cgf_vocab_format fmt, bool addrs);

/* Parse one set element ("10.0.0.0/8", "fd00::/8", "22", "8000..8100"). */
int cgf_parse_cidr(const char *s, struct cgf_cidr *out, char *why, size_t whylen);
int cgf_parse_range(const char *s, struct cgf_range *out, char *why, size_t whylen);
void cgf_format_cidr(const struct cgf_cidr *c, char *buf, size_t len);

/* The IPv4 prefixes of an address set as sorted, merged intervals (host
 * order); NULL when memory runs out. */
struct cgf_ival4 {
	uint32_t lo, hi;
};
struct cgf_ival4 *cgf_intervals4(const struct cgf_set *s, size_t *n);

/* A whole file ('-': standard input) as a string: at most
 * CGF_EXPR_MAX_TEXT bytes, and no NUL byte (a filter cut short there would
 * be another filter); NULL with the reason in why. */
char *cgf_read_text(const char *path, char *why, size_t whylen);

/* Room for element n of the array *p of *cap elements of sz bytes (doubling
 * from first); false, the array untouched, when memory runs out. */
bool cgf_grow(void **p, size_t n, size_t *cap, size_t sz, size_t first);

#endif /* CGF_EXPR_H */
