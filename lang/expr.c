// SPDX-License-Identifier: GPL-2.0-only
/*
 * The filter language: lexer and recursive-descent parser with type
 * checking, constant folding and the error messages.  The tree it makes
 * (expr.h) goes to one of two back ends: C for port-firewall (emit_c.c) or
 * BPF instructions for cgfilter (emit_bpf.c).  The names are vocab.c's.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "expr.h"

/* ---- arena ------------------------------------------------------------ */

struct cgf_arena {
	struct cgf_arena *next;
	size_t used, size;
	max_align_t data[];
};

static void *arena_alloc(struct cgf_arena **a, size_t n)
{
	struct cgf_arena *b = *a;

	n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
	if (!b || b->size - b->used < n) {
		size_t size = n > 65536 ? n : 65536;

		b = malloc(sizeof(*b) + size);
		if (!b)
			return NULL;
		b->next = *a;
		b->used = 0;
		b->size = size;
		*a = b;
	}
	b->used += n;
	return memset((char *)b->data + b->used - n, 0, n);
}

static void arena_free(struct cgf_arena *a)
{
	while (a) {
		struct cgf_arena *next = a->next;

		free(a);
		a = next;
	}
}

/* ---- lexer ------------------------------------------------------------ */

enum tok_kind {
	T_EOF,
	T_NUM,
	T_IDENT,
	T_OP,   /* operators and punctuation; text says which */
	T_SETREF,
	T_STR,  /* "..." (cgfilter): str, decoded */
	T_BAD,  /* not a token of the language; why says so when it is used */
};

struct token {
	enum tok_kind kind;
	size_t pos, len;
	uint64_t val;
	int line, col;
	char why[96];
	char *str;      /* T_STR: the string, decoded (parser memory) */
};

struct parser {
	const char *s;
	size_t n;
	size_t pos;
	int line;
	size_t line_start;
	const struct cgf_parse_opts *opts;
	struct cgf_error *err;
	struct cgf_expr *e;
	int depth;
	bool have_peek;
	struct token peek;
	bool failed;
	bool nomem;
};

static bool full(const struct parser *p)
{
	return p->opts->dialect == CGF_DIALECT_FULL;
}

static void fail_at(struct parser *p, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void fail_at(struct parser *p, int line, int col, const char *fmt, ...)
{
	va_list ap;

	if (p->failed)
		return;
	p->failed = true;
	p->err->line = line;
	p->err->col = col;
	va_start(ap, fmt);
	vsnprintf(p->err->msg, sizeof(p->err->msg), fmt, ap);
	va_end(ap);
}

#define fail_tok(p, t, ...) fail_at(p, (t)->line, (t)->col, __VA_ARGS__)

static void *palloc(struct parser *p, size_t n)
{
	void *r = arena_alloc(&p->e->arena, n);

	if (!r && !p->failed) {
		p->nomem = true;
		fail_at(p, 0, 0, "out of memory");
	}
	return r;
}

/* Printable rendering of a token's text for messages, at most ~40 bytes. */
const char *cgf_clip(const char *s, char *buf, size_t len)
{
	size_t i, o = 0, n = strlen(s);

	for (i = 0; i < n && i < 60 && o + 8 < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (isprint(c))
			buf[o++] = (char)c;
		else
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
	}
	if (i < n && o + 4 < len) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = 0;
	return buf;
}

static const char *tok_text(const struct parser *p, const struct token *t, char *buf, size_t len)
{
	size_t i, o = 0, n = t->len > 40 ? 40 : t->len;

	if (t->kind == T_EOF)
		return "end of filter";
	for (i = 0; i < n && o + 5 < len; i++) {
		unsigned char c = p->s[t->pos + i];

		if (isprint(c))
			buf[o++] = c;
		else
			o += snprintf(buf + o, len - o, "\\x%02x", c);
	}
	if (n < t->len && o + 4 < len) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = 0;
	return buf;
}

static void skip_space(struct parser *p)
{
	while (p->pos < p->n) {
		char c = p->s[p->pos];

		if (c == '\n') {
			p->pos++;
			p->line++;
			p->line_start = p->pos;
		} else if (c == ' ' || c == '\t' || c == '\r') {
			p->pos++;
		} else if (c == '#' && full(p)) {
			while (p->pos < p->n && p->s[p->pos] != '\n')
				p->pos++;
		} else {
			break;
		}
	}
}

static int col_of(const struct parser *p, size_t pos)
{
	return (int)(pos - p->line_start) + 1;
}

static bool is_ident_start(char c)
{
	return isalpha((unsigned char)c) || c == '_';
}

static bool is_ident_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

static const char *const ops[] = {
	"||", "&&", "==", "!=", "<=", ">=", "<<", ">>",
	"|", "&", "^", "<", ">", "+", "-", "*", "/", "%", "!", "~",
	"?", ":", "(", ")",
	/* cgfilter only */
	"{", "}", ",", "=", ";",
};
#define N_C_OPS 24

/* Parse a C integer literal (decimal or 0x hex) of the whole of s[0..len). */
static int parse_uint(const char *s, size_t len, uint64_t *out, const char **why)
{
	uint64_t v = 0;
	unsigned base = 10;
	size_t i = 0;

	if (len == 0) {
		*why = "empty number '%s'";
		return -1;
	}
	if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		i = 2;
		if (len == 2) {
			*why = "bad number '%s'";
			return -1;
		}
	} else if (len > 1 && s[0] == '0') {
		*why = "octal literal '%s' is not supported: write it in decimal or 0x hex";
		return -1;
	}
	for (; i < len; i++) {
		unsigned d;
		char c = s[i];

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (base == 16 && isxdigit((unsigned char)c))
			d = (tolower((unsigned char)c) - 'a') + 10;
		else {
			*why = "bad number '%s'";
			return -1;
		}
		if (v > (UINT64_MAX - d) / base) {
			*why = "number '%s' does not fit in 64 bits";
			return -1;
		}
		v = v * base + d;
	}
	*out = v;
	return 0;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	       c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/*
 * A string: a double quote, characters or the escapes backslash-quote,
 * backslash-backslash and backslash-x with two hex digits, a double quote;
 * on one line, no NUL byte, at most CGF_EXE_PATH_MAX - 1 bytes decoded.
 */
static void lex_string(struct parser *p, struct token *t)
{
	size_t start = p->pos, o = 0;
	char *buf = palloc(p, CGF_EXE_PATH_MAX);

	t->kind = T_BAD;
	if (!buf)
		return;
	p->pos++;
	for (;;) {
		char c;
		int v = -1;

		if (p->pos >= p->n || p->s[p->pos] == '\n') {
			t->len = p->pos - start;
			snprintf(t->why, sizeof(t->why), "string not closed: a '\"' is missing");
			return;
		}
		c = p->s[p->pos++];
		if (c == '"')
			break;
		if (c == '\\') {
			char e = p->pos < p->n ? p->s[p->pos] : 0;

			if (e == '"' || e == '\\') {
				v = (unsigned char)e;
				p->pos++;
			} else if (e == 'x' && p->pos + 2 < p->n && hexval(p->s[p->pos + 1]) >= 0 &&
				   hexval(p->s[p->pos + 2]) >= 0) {
				v = hexval(p->s[p->pos + 1]) * 16 + hexval(p->s[p->pos + 2]);
				p->pos += 3;
			} else {
				t->len = p->pos - start;
				snprintf(t->why, sizeof(t->why),
					 "bad escape in a string: write \\\" \\\\ or \\xHH");
				return;
			}
			if (!v) {
				t->len = p->pos - start;
				snprintf(t->why, sizeof(t->why), "a string cannot hold a NUL byte (\\x00)");
				return;
			}
		} else {
			v = (unsigned char)c;
		}
		if (o + 1 >= CGF_EXE_PATH_MAX) {
			while (p->pos < p->n && p->s[p->pos] != '"' && p->s[p->pos] != '\n')
				p->pos++;
			t->len = p->pos - start;
			snprintf(t->why, sizeof(t->why), "string longer than %d bytes", CGF_EXE_PATH_MAX - 1);
			return;
		}
		buf[o++] = (char)v;
	}
	buf[o] = 0;
	t->kind = T_STR;
	t->len = p->pos - start;
	t->str = buf;
}

static void lex(struct parser *p, struct token *t)
{
	size_t start, i;
	char c;

	skip_space(p);
	start = p->pos;
	memset(t, 0, sizeof(*t));
	t->pos = start;
	t->line = p->line;
	t->col = col_of(p, start);
	if (start >= p->n) {
		t->kind = T_EOF;
		return;
	}
	c = p->s[start];
	if (isdigit((unsigned char)c)) {
		const char *why;

		/* take the whole word so that 53u or 1.5 is one bad token */
		while (p->pos < p->n && (is_ident_char(p->s[p->pos]) || p->s[p->pos] == '.'))
			p->pos++;
		t->kind = T_NUM;
		t->len = p->pos - start;
		if (parse_uint(p->s + start, t->len, &t->val, &why)) {
			char buf[64];

			t->kind = T_BAD;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
			snprintf(t->why, sizeof(t->why), why, tok_text(p, t, buf, sizeof(buf)));
#pragma GCC diagnostic pop
		}
		return;
	}
	if (is_ident_start(c)) {
		while (p->pos < p->n && is_ident_char(p->s[p->pos]))
			p->pos++;
		t->kind = T_IDENT;
		t->len = p->pos - start;
		return;
	}
	if (c == '"' && full(p)) {
		lex_string(p, t);
		return;
	}
	if (c == '@' && full(p)) {
		p->pos++;
		while (p->pos < p->n && is_ident_char(p->s[p->pos]))
			p->pos++;
		t->kind = T_SETREF;
		t->len = p->pos - start;
		if (t->len == 1) {
			t->kind = T_BAD;
			snprintf(t->why, sizeof(t->why), "expected a set name after '@'");
		} else if (t->len - 1 > CGF_SET_NAME_MAX) {
			t->kind = T_BAD;
			snprintf(t->why, sizeof(t->why), "set name longer than %d characters",
				 CGF_SET_NAME_MAX);
		}
		return;
	}
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		size_t l = strlen(ops[i]);

		if (i >= N_C_OPS && !full(p))
			break;
		if (p->n - start >= l && !memcmp(p->s + start, ops[i], l)) {
			p->pos += l;
			t->kind = T_OP;
			t->len = l;
			return;
		}
	}
	/* not a token of the language: one UTF-8 character */
	t->kind = T_BAD;
	t->len = 1;
	if ((unsigned char)c >= 0xc0)
		while (t->len < 4 && start + t->len < p->n &&
		       ((unsigned char)p->s[start + t->len] & 0xc0) == 0x80)
			t->len++;
	p->pos += t->len;
	{
		char buf[64];

		if (c == '=' && !full(p))
			snprintf(t->why, sizeof(t->why), "unexpected '=' (did you mean '=='?)");
		else
			snprintf(t->why, sizeof(t->why), "unexpected '%s'",
				 tok_text(p, t, buf, sizeof(buf)));
	}
}

static struct token *peek(struct parser *p)
{
	if (!p->have_peek) {
		lex(p, &p->peek);
		p->have_peek = true;
	}
	return &p->peek;
}

static struct token next(struct parser *p)
{
	struct token t = *peek(p);

	p->have_peek = false;
	return t;
}

static bool tok_is(const struct parser *p, const struct token *t, const char *op)
{
	size_t l = strlen(op);

	return (t->kind == T_OP || t->kind == T_IDENT) && t->len == l &&
	       !memcmp(p->s + t->pos, op, l);
}

static bool accept_op(struct parser *p, const char *op)
{
	if (p->failed || !tok_is(p, peek(p), op))
		return false;
	next(p);
	return true;
}

static void unexpected(struct parser *p, const struct token *t, const char *expected)
{
	char buf[64];

	if (t->kind == T_BAD)
		fail_tok(p, t, "%s", t->why);
	else if (t->kind == T_EOF)
		fail_tok(p, t, "unexpected end of filter, expected %s", expected);
	else
		fail_tok(p, t, "unexpected '%s', expected %s", tok_text(p, t, buf, sizeof(buf)),
			 expected);
}

/* Read a set element or address literal: a run of [0-9A-Za-z.:/-]. */
static struct token lex_item(struct parser *p)
{
	struct token t;

	/* the parser may have looked ahead one token: start from there */
	if (p->have_peek) {
		p->pos = p->peek.pos;
		p->have_peek = false;
	}
	skip_space(p);
	memset(&t, 0, sizeof(t));
	t.pos = p->pos;
	t.line = p->line;
	t.col = col_of(p, p->pos);
	while (p->pos < p->n) {
		char c = p->s[p->pos];

		if (!isalnum((unsigned char)c) && c != '.' && c != ':' && c != '/' && c != '-')
			break;
		p->pos++;
	}
	t.len = p->pos - t.pos;
	t.kind = t.len ? T_NUM : T_EOF;
	return t;
}

/* ---- set elements --------------------------------------------------- */

int cgf_parse_cidr(const char *s, struct cgf_cidr *out, char *why, size_t whylen)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned maxlen, plen, i;

	memset(out, 0, sizeof(*out));
	if (alen == 0 || alen >= sizeof(buf)) {
		snprintf(why, whylen, "bad address '%s'", s);
		return -1;
	}
	memcpy(buf, s, alen);
	buf[alen] = 0;
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = 4;
		maxlen = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->family = 6;
		maxlen = 128;
	} else {
		snprintf(why, whylen, "bad address '%s'", s);
		return -1;
	}
	plen = maxlen;
	if (slash) {
		const char *q = slash + 1;
		uint64_t v;
		const char *w;

		if (!*q || parse_uint(q, strlen(q), &v, &w) || v > maxlen || (q[0] == '0' && q[1])) {
			snprintf(why, whylen, "bad prefix length in '%s' (0..%u for IPv%d)", s,
				 maxlen, out->family);
			return -1;
		}
		plen = (unsigned)v;
	}
	out->plen = (uint8_t)plen;
	for (i = plen; i < maxlen; i++) {
		if (out->addr[i / 8] & (0x80 >> (i % 8))) {
			struct cgf_cidr fixed = *out;
			char net[64];
			unsigned j;

			for (j = plen; j < maxlen; j++)
				fixed.addr[j / 8] &= ~(0x80 >> (j % 8));
			cgf_format_cidr(&fixed, net, sizeof(net));
			snprintf(why, whylen, "'%s' has host bits set (did you mean %s?)", s, net);
			return -1;
		}
	}
	return 0;
}

void cgf_format_cidr(const struct cgf_cidr *c, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(c->family == 4 ? AF_INET : AF_INET6, c->addr, a, sizeof(a));
	if (c->plen == (c->family == 4 ? 32 : 128))
		snprintf(buf, len, "%s", a);
	else
		snprintf(buf, len, "%s/%u", a, c->plen);
}

int cgf_parse_range(const char *s, struct cgf_range *out, char *why, size_t whylen)
{
	const char *dots = strstr(s, "..");
	const char *w;
	uint64_t lo, hi;

	if (dots) {
		if (parse_uint(s, (size_t)(dots - s), &lo, &w) ||
		    parse_uint(dots + 2, strlen(dots + 2), &hi, &w) || dots == s || !dots[2]) {
			snprintf(why, whylen, "bad range '%s' (expected LOW..HIGH)", s);
			return -1;
		}
	} else {
		if (parse_uint(s, strlen(s), &lo, &w)) {
			snprintf(why, whylen, "bad set element '%s' (expected a number or LOW..HIGH)", s);
			return -1;
		}
		hi = lo;
	}
	if (lo > hi) {
		snprintf(why, whylen, "bad range '%s' (start above end)", s);
		return -1;
	}
	if (hi > CGF_INT_SET_MAX) {
		snprintf(why, whylen, "set element '%s' out of range 0..%d", s, CGF_INT_SET_MAX);
		return -1;
	}
	out->lo = lo;
	out->hi = hi;
	return 0;
}

/* ---- parser ------------------------------------------------------------ */

static struct cgf_node *new_node(struct parser *p, enum cgf_node_kind kind, const struct token *t)
{
	struct cgf_node *n;

	if (p->failed)
		return NULL;
	if (++p->e->nnodes > CGF_EXPR_MAX_NODES) {
		fail_tok(p, t, "filter too large (more than %d terms)", CGF_EXPR_MAX_NODES);
		return NULL;
	}
	n = palloc(p, sizeof(*n));
	if (!n)
		return NULL;
	n->kind = kind;
	n->type = CGF_T_INT;
	n->line = t->line;
	n->col = t->col;
	return n;
}

static struct cgf_node *parse_cond(struct parser *p);

static const char *addr_hint = "is an address: compare it with == ADDR[/LEN] or use 'in'";

static bool want_int(struct parser *p, const struct cgf_node *n)
{
	if (!n || p->failed)
		return false;
	if (n->type == CGF_T_EXE) {
		fail_at(p, n->line, n->col,
			"exe is an executable: compare it with == \"PATH\", != \"PATH\" or use 'in'");
		return false;
	}
	if (n->type != CGF_T_INT) {
		fail_at(p, n->line, n->col, "%s %s", cgf_addr_name(n->field), addr_hint);
		return false;
	}
	return true;
}

static struct cgf_set *new_set(struct parser *p, enum cgf_type type, const struct token *t)
{
	struct cgf_set *s = palloc(p, sizeof(*s));
	struct cgf_set **pp;

	if (!s)
		return NULL;
	s->type = type;
	s->line = t->line;
	s->col = t->col;
	for (pp = &p->e->sets; *pp; pp = &(*pp)->next)
		;
	*pp = s;
	return s;
}

static struct cgf_set *find_set(struct parser *p, const char *name)
{
	struct cgf_set *s;

	for (s = p->e->sets; s; s = s->next)
		if (!strcmp(s->name, name))
			return s;
	return NULL;
}

bool cgf_grow(void **p, size_t n, size_t *cap, size_t sz, size_t first)
{
	size_t c;
	void *q;

	if (n < *cap)
		return true;
	c = *cap ? *cap * 2 : first;
	q = realloc(*p, c * sz);
	if (!q)
		return false;
	*p = q;
	*cap = c;
	return true;
}

static bool grow(struct parser *p, void **arr, size_t *cap, size_t n, size_t elem)
{
	if (cgf_grow(arr, n, cap, elem, 8))
		return true;
	p->nomem = true;
	fail_at(p, 0, 0, "out of memory");
	return false;
}

static bool item_looks_like_addr(const struct parser *p, const struct token *t)
{
	size_t i;

	for (i = 0; i < t->len; i++) {
		char c = p->s[t->pos + i];

		if (c == ':')
			return true;
		if (c == '.' && !(i + 1 < t->len && p->s[t->pos + i + 1] == '.') &&
		    !(i > 0 && p->s[t->pos + i - 1] == '.'))
			return true;
	}
	return false;
}

static const char *const keywords[] = { "in", "add", "del", "timeout", "exe" };

bool cgf_host_name_ok(const char *s, char *why, size_t whylen)
{
	size_t n = strlen(s), i, label = 0;
	bool letter = false;
	uint64_t v;
	const char *w;

	if (!n || n > CGF_HOST_MAX + (s[n - 1] == '.')) {
		snprintf(why, whylen, "a host name has 1 to %d characters", CGF_HOST_MAX);
		return false;
	}
	if (!parse_uint(s, n, &v, &w)) {
		snprintf(why, whylen, "'%s' is a number", s);
		return false;
	}
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == '.') {
			if (!label || s[i - 1] == '-') {
				snprintf(why, whylen, "bad host name '%s' (an empty label, or one ending in '-')", s);
				return false;
			}
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)c) && c != '-') {
			snprintf(why, whylen, "bad host name '%s' (letters, digits, '.' and '-')", s);
			return false;
		}
		if ((c == '-' && !label) || ++label > 63) {
			snprintf(why, whylen, "bad host name '%s' (a label starts with '-' or is longer than 63)", s);
			return false;
		}
		letter |= isalpha((unsigned char)c) != 0;
	}
	if (s[n - 1] == '-' || !letter) {
		snprintf(why, whylen, "bad host name '%s'", s);
		return false;
	}
	/* the last label starts with a letter: getaddrinfo() reads 0x7f.1 or
	 * 012.0.0.0x1 as inet_aton() does (127.0.0.1, 10.0.0.1) */
	for (i = n - 1 - (s[n - 1] == '.'); i > 0 && s[i - 1] != '.'; i--)
		;
	if (!isalpha((unsigned char)s[i])) {
		snprintf(why, whylen, "'%s' is not a host name (its last label does not start with a "
			 "letter); write an address as a.b.c.d", s);
		return false;
	}
	for (i = 0; i < cgf_vocab_len; i++)
		if (!strcmp(s, cgf_vocab[i].name))
			goto taken;
	for (i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++)
		if (!strcmp(s, keywords[i]))
			goto taken;
	return true;
taken:
	snprintf(why, whylen, "'%s' is a name of the language: write the host as '%s.'", s, s);
	return false;
}

void cgf_host_name_norm(char *s)
{
	size_t n = strlen(s);

	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
	if (n > 1 && s[-1] == '.')
		s[-1] = 0;
}

/* The addresses of the host name text into s (its type: addresses). */
static void add_host(struct parser *p, struct cgf_set *s, const struct token *t, const char *name)
{
	struct cgf_cidr *addrs = NULL;
	char why[300], text[CGF_HOST_MAX + 8];
	struct cgf_host *h;
	size_t n = 0;

	snprintf(text, sizeof(text), "%.*s", CGF_HOST_MAX + 1, name);
	cgf_host_name_norm(text);

	if (!p->opts->resolve_name) {
		fail_tok(p, t, "'%s' is a host name: only a cgfilter engine resolves host names "
			 "(load, set, register), and refreshes them; write addresses here", text);
		return;
	}
	if (!grow(p, (void **)&s->hosts, &s->hcap, s->nhosts, sizeof(*s->hosts)))
		return;
	if (p->opts->resolve_name(text, s, &addrs, &n, why, sizeof(why), p->opts->resolve_ctx)) {
		fail_tok(p, t, "%s", why);
		return;
	}
	h = &s->hosts[s->nhosts++];
	memset(h, 0, sizeof(*h));
	memcpy(h->name, text, strlen(text) + 1); /* checked: at most CGF_HOST_MAX + 1 */
	h->first = s->n;
	for (size_t i = 0; i < n && !p->failed; i++) {
		if (!grow(p, (void **)&s->cidrs, &s->cap, s->n, sizeof(*s->cidrs)))
			break;
		s->cidrs[s->n++] = addrs[i];
		h->n++;
	}
	free(addrs);
}

static bool has_letter(const char *s)
{
	for (; *s; s++)
		if (isalpha((unsigned char)*s))
			return true;
	return false;
}

/* A declaration's first item a host name: the set holds addresses. */
static bool item_is_host(const struct parser *p, const struct token *t)
{
	char text[CGF_HOST_MAX + 2], why[200];

	if (t->kind != T_NUM || t->len >= sizeof(text))
		return false;
	memcpy(text, p->s + t->pos, t->len);
	text[t->len] = 0;
	return cgf_host_name_ok(text, why, sizeof(why));
}

/* Add the item at t to set s, whose type is known. */
static void add_item(struct parser *p, struct cgf_set *s, const struct token *t)
{
	char text[CGF_HOST_MAX + 8], why[512];

	if (s->type == CGF_T_EXE) {
		cgf_exe_resolve_fn resolve = p->opts->resolve_exe ? p->opts->resolve_exe : cgf_exe_resolve;

		if (t->kind != T_STR) {
			fail_tok(p, t, "@%s holds executables: write each as a \"PATH\"", s->name[0] ? s->name : "this set");
			return;
		}
		if (!s->name[0] && s->n >= CGF_EXE_LITERAL_MAX) {
			fail_tok(p, t, "more than %d executables in a set: put them in a named set",
				 CGF_EXE_LITERAL_MAX);
			return;
		}
		if (!grow(p, (void **)&s->exes, &s->cap, s->n, sizeof(*s->exes)))
			return;
		if (resolve(t->str, &s->exes[s->n], why, sizeof(why)))
			fail_tok(p, t, "%s", why);
		else
			s->n++;
		return;
	}
	if (t->kind == T_STR) {
		fail_tok(p, t, "a string names an executable, but this set holds %s",
			 s->type == CGF_T_ADDR ? "addresses" : "integers");
		return;
	}
	if (t->len >= sizeof(text)) {
		fail_tok(p, t, "set element too long");
		return;
	}
	memcpy(text, p->s + t->pos, t->len);
	text[t->len] = 0;
	if (s->type == CGF_T_ADDR) {
		char hwhy[200];

		if (!grow(p, (void **)&s->cidrs, &s->cap, s->n, sizeof(*s->cidrs)))
			return;
		if (!cgf_parse_cidr(text, &s->cidrs[s->n], why, sizeof(why)))
			s->n++;
		else if (cgf_host_name_ok(text, hwhy, sizeof(hwhy)))
			add_host(p, s, t, text);
		else if (!strpbrk(text, ":/") && has_letter(text) && strncasecmp(text, "0x", 2))
			fail_tok(p, t, "%s", hwhy); /* meant as a name */
		else
			fail_tok(p, t, "%s", why);
	} else {
		if (!grow(p, (void **)&s->ranges, &s->cap, s->n, sizeof(*s->ranges)))
			return;
		if (item_looks_like_addr(p, t))
			fail_tok(p, t, "'%s' is an address, but this set holds integers", text);
		else if (cgf_parse_range(text, &s->ranges[s->n], why, sizeof(why)))
			fail_tok(p, t, "%s", why);
		else
			s->n++;
	}
}

/*
 * '{' item, ... '}' into s.  If *type_known is false the first item decides
 * the type (declarations); otherwise s->type is the type.
 */
static void parse_items(struct parser *p, struct cgf_set *s, bool *type_known)
{
	struct token open = next(p);

	if (!tok_is(p, &open, "{")) {
		unexpected(p, &open, "'{'");
		return;
	}
	while (!p->failed) {
		struct token t;

		if (accept_op(p, "}"))
			return;
		if (peek(p)->kind != T_EOF && p->s[peek(p)->pos] == '"') {
			/* an executable ("PATH"), or a bad string */
			t = next(p);
			if (t.kind == T_BAD) {
				fail_tok(p, &t, "%s", t.why);
				return;
			}
		} else {
			t = lex_item(p);
		}
		if (t.kind == T_EOF) {
			unexpected(p, peek(p), "a set element or '}'");
			return;
		}
		if (!*type_known) {
			s->type = t.kind == T_STR ? CGF_T_EXE :
				  item_looks_like_addr(p, &t) || item_is_host(p, &t) ? CGF_T_ADDR : CGF_T_INT;
			*type_known = true;
		}
		add_item(p, s, &t);
		if (p->failed)
			return;
		if (!accept_op(p, ",")) {
			struct token *c = peek(p);

			if (!tok_is(p, c, "}"))
				unexpected(p, c, "',' or '}'");
		}
	}
}

static const char *type_name(enum cgf_type t)
{
	return t == CGF_T_ADDR ? "addresses" : t == CGF_T_EXE ? "executables" : "integers";
}

/* A use of set s (token r) with values of type: an empty declaration takes
 * the type of its first use; false, failed, if s holds the other type. */
static bool set_of_type(struct parser *p, struct cgf_set *s, enum cgf_type type,
			const struct token *r)
{
	if (s->timeout && type == CGF_T_EXE) {
		fail_tok(p, r, "@%s is a dynamic set: it holds addresses or integers, not executables",
			 s->name);
		return false;
	}
	if (s->declared == 2) {
		s->type = type;
		s->declared = 1;
	}
	if (s->type != type) {
		fail_tok(p, r, "@%s is a set of %s, not %s", s->name, type_name(s->type),
			 type_name(type));
		return false;
	}
	return true;
}

/* The token op next, taken; or the failure "expected what". */
static bool expect_op(struct parser *p, const char *op, const char *what)
{
	struct token *c = peek(p);

	if (!tok_is(p, c, op)) {
		unexpected(p, c, what);
		return false;
	}
	next(p);
	return true;
}

/* After 'in': a literal set or @name, of the type of the tested value. */
static struct cgf_set *parse_set_ref(struct parser *p, enum cgf_type type)
{
	struct token *t = peek(p);
	struct cgf_set *s;
	bool known = true;

	if (p->failed)
		return NULL;
	if (t->kind == T_SETREF) {
		struct token r = next(p);
		char name[CGF_SET_NAME_MAX + 1];
		enum cgf_type ext;

		memcpy(name, p->s + r.pos + 1, r.len - 1);
		name[r.len - 1] = 0;
		s = find_set(p, name);
		if (!s) {
			if (p->opts->any_set && (!p->opts->lookup_set ||
						 p->opts->lookup_set(name, &ext, p->opts->lookup_ctx) < 0)) {
				ext = type;
			} else if (!p->opts->lookup_set ||
				   p->opts->lookup_set(name, &ext, p->opts->lookup_ctx) < 0) {
				fail_tok(p, &r, "unknown set @%s", name);
				return NULL;
			}
			s = new_set(p, ext, &r);
			if (!s)
				return NULL;
			snprintf(s->name, sizeof(s->name), "%s", name);
		}
		return set_of_type(p, s, type, &r) ? s : NULL;
	}
	if (!tok_is(p, t, "{")) {
		unexpected(p, t, "'{' or '@set' after 'in'");
		return NULL;
	}
	s = new_set(p, type, t);
	if (s)
		parse_items(p, s, &known);
	return p->failed ? NULL : s;
}

/* A name of the vocabulary (vocab.c): a field, an address, or a tcp_*
 * flag, which is ((tcp_flags & MASK) != 0). */
static struct cgf_node *parse_name(struct parser *p, const struct token *t)
{
	struct cgf_node *n, *f, *m, *a, *z;
	char buf[64];
	size_t i;

	for (i = 0; i < cgf_vocab_len; i++)
		if (strlen(cgf_vocab[i].name) == t->len &&
		    !memcmp(cgf_vocab[i].name, p->s + t->pos, t->len))
			break;
	if (i == cgf_vocab_len) {
		fail_tok(p, t, "unknown name '%s'", tok_text(p, t, buf, sizeof(buf)));
		return NULL;
	}
	if (cgf_vocab[i].addr == 2) { /* exe */
		if (!full(p)) {
			fail_tok(p, t, "'exe' needs cgfilter: port-firewall has no executables");
			return NULL;
		}
		n = new_node(p, CGF_N_EXE, t);
		if (n)
			n->type = CGF_T_EXE;
		return n;
	}
	if (cgf_vocab[i].addr) {
		if (!full(p)) {
			fail_tok(p, t, "'%s' needs cgfilter: port-firewall has no addresses",
				 cgf_vocab[i].name);
			return NULL;
		}
		n = new_node(p, CGF_N_ADDR, t);
		if (n) {
			n->type = CGF_T_ADDR;
			n->field = cgf_vocab[i].field;
		}
		return n;
	}
	if (cgf_vocab[i].field >= 0) {
		n = new_node(p, CGF_N_FIELD, t);
		if (n)
			n->field = cgf_vocab[i].field;
		return n;
	}
	f = new_node(p, CGF_N_FIELD, t);
	m = new_node(p, CGF_N_NUM, t);
	a = new_node(p, CGF_N_BINARY, t);
	z = new_node(p, CGF_N_NUM, t);
	n = new_node(p, CGF_N_BINARY, t);
	if (!n)
		return NULL;
	f->field = CGF_F_TCP_FLAGS;
	m->val = cgf_vocab[i].flag_mask;
	a->op = CGF_OP_BAND;
	a->a = f;
	a->b = m;
	n->op = CGF_OP_NE;
	n->a = a;
	n->b = z;
	return n;
}

/* add(@set, VALUE) or del(@set, VALUE), after the name */
static struct cgf_node *parse_setop(struct parser *p, const struct token *t)
{
	struct cgf_node *n = new_node(p, CGF_N_SETOP, t), *v;
	struct token r;
	char name[CGF_SET_NAME_MAX + 1];
	struct cgf_set *s;

	next(p); /* ( */
	r = next(p);
	if (!n || p->failed)
		return NULL;
	if (r.kind != T_SETREF) {
		unexpected(p, &r, "a set ('@name') after '('");
		return NULL;
	}
	memcpy(name, p->s + r.pos + 1, r.len - 1);
	name[r.len - 1] = 0;
	s = find_set(p, name);
	if (!s || !s->timeout) {
		fail_tok(p, &r, "%.3s() changes a dynamic set: declare it first, '@%s = { } timeout "
			 "SECONDS'", p->s + t->pos, name);
		return NULL;
	}
	if (!expect_op(p, ",", "','"))
		return NULL;
	v = parse_cond(p);
	if (p->failed || !expect_op(p, ")", "')'"))
		return NULL;
	if (v->type == CGF_T_EXE) {
		fail_at(p, v->line, v->col, "%.3s() takes an address or an integer, not an executable",
			p->s + t->pos);
		return NULL;
	}
	if (!set_of_type(p, s, v->type, &r))
		return NULL;
	n->val = p->s[t->pos] == 'a';
	n->set = s;
	n->a = v;
	return n;
}

static struct cgf_node *parse_primary(struct parser *p)
{
	struct token t = next(p), *c;
	struct cgf_node *n;
	char what[64];

	if (p->failed)
		return NULL;
	if (t.kind == T_BAD) {
		fail_tok(p, &t, "%s", t.why);
		return NULL;
	}
	if (t.kind == T_NUM) {
		n = new_node(p, CGF_N_NUM, &t);
		if (n)
			n->val = t.val;
		return n;
	}
	if (t.kind == T_IDENT && full(p) && tok_is(p, peek(p), "(") &&
	    ((t.len == 3 && !memcmp(p->s + t.pos, "add", 3)) ||
	     (t.len == 3 && !memcmp(p->s + t.pos, "del", 3))))
		return parse_setop(p, &t);
	if (t.kind == T_IDENT)
		return parse_name(p, &t);
	if (!tok_is(p, &t, "(")) {
		unexpected(p, &t, "a name, a number or '('");
		return NULL;
	}
	n = parse_cond(p);
	if (p->failed)
		return NULL;
	c = peek(p);
	if (!tok_is(p, c, ")")) {
		snprintf(what, sizeof(what), "')' to close '(' at column %d", t.col);
		unexpected(p, c, what);
		return NULL;
	}
	next(p);
	return n;
}

static struct cgf_node *parse_unary(struct parser *p)
{
	static const struct {
		const char *text;
		enum cgf_op op;
	} un[] = { { "!", CGF_OP_NOT }, { "~", CGF_OP_BNOT }, { "-", CGF_OP_NEG }, { "+", CGF_OP_NONE } };
	struct token *t = peek(p);
	size_t i;

	if (p->failed)
		return NULL;
	for (i = 0; i < sizeof(un) / sizeof(un[0]); i++) {
		struct token op;
		struct cgf_node *a, *n;

		if (!tok_is(p, t, un[i].text))
			continue;
		op = next(p);
		if (++p->depth > CGF_EXPR_MAX_DEPTH) {
			fail_tok(p, &op, "filter nested too deeply (more than %d levels)",
				 CGF_EXPR_MAX_DEPTH);
			return NULL;
		}
		a = parse_unary(p);
		p->depth--;
		if (!want_int(p, a))
			return NULL;
		if (un[i].op == CGF_OP_NONE)
			return a;
		n = new_node(p, CGF_N_UNARY, &op);
		if (n) {
			n->op = un[i].op;
			n->a = a;
		}
		return n;
	}
	return parse_primary(p);
}

static const struct {
	const char *text;
	enum cgf_op op;
	int prec;
} binops[] = {
	{ "||", CGF_OP_LOR, 1 },  { "&&", CGF_OP_LAND, 2 }, { "|", CGF_OP_BOR, 3 },
	{ "^", CGF_OP_BXOR, 4 },  { "&", CGF_OP_BAND, 5 },  { "==", CGF_OP_EQ, 6 },
	{ "!=", CGF_OP_NE, 6 },   { "<", CGF_OP_LT, 7 },    { "<=", CGF_OP_LE, 7 },
	{ ">", CGF_OP_GT, 7 },    { ">=", CGF_OP_GE, 7 },   { "in", CGF_OP_NONE, 7 },
	{ "<<", CGF_OP_SHL, 8 },  { ">>", CGF_OP_SHR, 8 },  { "+", CGF_OP_ADD, 9 },
	{ "-", CGF_OP_SUB, 9 },   { "*", CGF_OP_MUL, 10 },  { "/", CGF_OP_DIV, 10 },
	{ "%", CGF_OP_MOD, 10 },
};

/* x == ADDR[/LEN], x != ..., x in SET for an address x */
static struct cgf_node *make_in(struct parser *p, struct cgf_node *lhs, struct cgf_set *s,
				const struct token *t, bool negate)
{
	struct cgf_node *n = new_node(p, CGF_N_IN, t);

	if (!n)
		return NULL;
	n->a = lhs;
	n->set = s;
	if (negate) {
		struct cgf_node *x = new_node(p, CGF_N_UNARY, t);

		if (!x)
			return NULL;
		x->op = CGF_OP_NOT;
		x->a = n;
		n = x;
	}
	return n;
}

static struct cgf_node *parse_binary(struct parser *p, int minprec)
{
	struct cgf_node *lhs = parse_unary(p);

	while (lhs && !p->failed) {
		struct token *t = peek(p), op;
		struct cgf_node *rhs, *n;
		size_t i;

		for (i = 0; i < sizeof(binops) / sizeof(binops[0]); i++)
			if (tok_is(p, t, binops[i].text))
				break;
		if (i == sizeof(binops) / sizeof(binops[0]) || binops[i].prec < minprec)
			break;
		if (binops[i].op == CGF_OP_NONE && !full(p))
			break; /* 'in' is just an unknown name in C */
		op = next(p);
		if (binops[i].op == CGF_OP_NONE) {
			struct cgf_set *s = parse_set_ref(p, lhs->type);

			lhs = s ? make_in(p, lhs, s, &op, false) : NULL;
			continue;
		}
		if (lhs->type == CGF_T_EXE &&
		    (binops[i].op == CGF_OP_EQ || binops[i].op == CGF_OP_NE)) {
			struct token item = next(p);
			struct cgf_set *s;

			if (item.kind == T_BAD) {
				fail_tok(p, &item, "%s", item.why);
				return NULL;
			}
			if (item.kind != T_STR) {
				unexpected(p, &item, "an executable (\"PATH\") after 'exe ==' or 'exe !='");
				return NULL;
			}
			s = new_set(p, CGF_T_EXE, &item);
			if (!s)
				return NULL;
			add_item(p, s, &item);
			lhs = p->failed ? NULL
					: make_in(p, lhs, s, &op, binops[i].op == CGF_OP_NE);
			continue;
		}
		if (lhs->type == CGF_T_ADDR &&
		    (binops[i].op == CGF_OP_EQ || binops[i].op == CGF_OP_NE)) {
			struct token item = lex_item(p);
			struct cgf_set *s;

			if (item.kind == T_EOF) {
				unexpected(p, peek(p), "an address after '=='");
				return NULL;
			}
			s = new_set(p, CGF_T_ADDR, &item);
			if (!s)
				return NULL;
			add_item(p, s, &item);
			if (!p->failed && tok_is(p, peek(p), "/")) {
				/* '10.0.0.0 /8' would read as (src_ip == 10.0.0.0) / 8 */
				fail_tok(p, peek(p), "write a prefix without spaces, as in 10.0.0.0/8");
				return NULL;
			}
			lhs = p->failed ? NULL
					: make_in(p, lhs, s, &op, binops[i].op == CGF_OP_NE);
			continue;
		}
		if (!want_int(p, lhs))
			return NULL;
		if (++p->depth > CGF_EXPR_MAX_DEPTH) {
			fail_tok(p, &op, "filter nested too deeply (more than %d levels)",
				 CGF_EXPR_MAX_DEPTH);
			return NULL;
		}
		rhs = parse_binary(p, binops[i].prec + 1);
		p->depth--;
		if (!want_int(p, rhs))
			return NULL;
		n = new_node(p, CGF_N_BINARY, &op);
		if (!n)
			return NULL;
		n->op = binops[i].op;
		n->a = lhs;
		n->b = rhs;
		lhs = n;
	}
	return p->failed ? NULL : lhs;
}

static struct cgf_node *parse_cond(struct parser *p)
{
	struct cgf_node *c, *a, *b, *n;
	struct token q;

	if (++p->depth > CGF_EXPR_MAX_DEPTH) {
		fail_tok(p, peek(p), "filter nested too deeply (more than %d levels)",
			 CGF_EXPR_MAX_DEPTH);
		return NULL;
	}
	c = parse_binary(p, 1);
	if (c && !p->failed && tok_is(p, peek(p), "?")) {
		if (!want_int(p, c))
			return NULL;
		q = next(p);
		a = parse_cond(p);
		if (!want_int(p, a))
			return NULL;
		if (!tok_is(p, peek(p), ":")) {
			char what[64];

			snprintf(what, sizeof(what), "':' for the '?' at column %d", q.col);
			unexpected(p, peek(p), what);
			return NULL;
		}
		next(p);
		b = parse_cond(p);
		if (!want_int(p, b))
			return NULL;
		n = new_node(p, CGF_N_COND, &q);
		if (!n)
			return NULL;
		n->a = c;
		n->b = a;
		n->c = b;
		c = n;
	}
	p->depth--;
	return p->failed ? NULL : c;
}

/* After a declaration's items: 'timeout SECONDS' makes it a dynamic set. */
static void parse_timeout(struct parser *p, struct cgf_set *s)
{
	struct token *t = peek(p), n;

	if (p->failed || t->kind != T_IDENT || t->len != 7 || memcmp(p->s + t->pos, "timeout", 7))
		return;
	next(p);
	n = next(p);
	if (n.kind != T_NUM || n.val < 1 || n.val > CGF_DYN_TIMEOUT_MAX) {
		fail_tok(p, &n, "want a timeout of 1 to %d seconds after 'timeout'", CGF_DYN_TIMEOUT_MAX);
		return;
	}
	if (s->type == CGF_T_EXE && s->n) {
		fail_tok(p, t, "a dynamic set holds addresses or integers, not executables");
		return;
	}
	if (s->n) {
		fail_tok(p, t, "dynamic set @%s must start empty ('@%s = { } timeout %" PRIu64 "')",
			 s->name, s->name, n.val);
		return;
	}
	s->timeout = (uint32_t)n.val;
}

static void parse_decl(struct parser *p)
{
	struct token r = next(p);
	char name[CGF_SET_NAME_MAX + 1];
	struct cgf_set *s;
	struct token *t;
	bool known = false;

	memcpy(name, p->s + r.pos + 1, r.len - 1);
	name[r.len - 1] = 0;
	if (!p->opts->allow_decls) {
		fail_tok(p, &r, "set declarations ('@%s = { ... }') are not allowed here", name);
		return;
	}
	if (find_set(p, name)) {
		fail_tok(p, &r, "set @%s declared twice", name);
		return;
	}
	t = peek(p);
	if (!tok_is(p, t, "=")) {
		unexpected(p, t, "'=' in a set declaration");
		return;
	}
	next(p);
	s = new_set(p, CGF_T_INT, &r);
	if (!s)
		return;
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->declared = 1;
	parse_items(p, s, &known);
	parse_timeout(p, s);
	accept_op(p, ";");
	/*
	 * An empty declaration takes its type from how the filter uses it;
	 * that only matters for later set-add, so remember it is open.
	 */
	if (!known)
		s->type = CGF_T_INT, s->declared = 2;
}

int cgf_expr_postorder(struct cgf_node *root, int (*fn)(struct cgf_node *n, void *ctx),
		       void *ctx)
{
	/* a stack of nodes, each with how many of its children were taken */
	struct frame {
		struct cgf_node *n;
		int next;
	} *st = NULL;
	size_t depth = 0, cap = 0;
	struct cgf_node *push = root;
	int r = 0;

	while (push || depth) {
		struct frame *top;

		if (push) {
			if (depth == cap) {
				struct frame *p = realloc(st, (cap = cap ? cap * 2 : 64) * sizeof(*st));

				if (!p) {
					r = -ENOMEM;
					break;
				}
				st = p;
			}
			st[depth].n = push;
			st[depth].next = 0;
			depth++;
			push = NULL;
		}
		top = &st[depth - 1];
		if (top->next < 3) {
			struct cgf_node *kids[3] = { top->n->a, top->n->b, top->n->c };

			push = kids[top->next++];
			continue;
		}
		r = fn(top->n, ctx);
		if (r)
			break;
		depth--;
	}
	free(st);
	return r;
}

/* After parsing, for every node: an empty declared set takes the type of its
 * first use; constant subtrees get their value (BPF's ALU64 semantics). */
static int settle_node(struct cgf_node *n, void *ctx)
{
	const struct cgf_node *a = n->a, *b = n->b, *c = n->c;
	uint64_t x, y;

	(void)ctx;
	if (n->kind == CGF_N_IN && n->set->declared == 2) {
		n->set->type = n->a->type;
		n->set->declared = 1;
	}
	switch (n->kind) {
	case CGF_N_NUM:
		n->is_const = 1;
		n->cval = n->val;
		break;
	case CGF_N_UNARY:
		n->is_const = a->is_const;
		x = a->cval;
		n->cval = n->op == CGF_OP_NOT ? !x : n->op == CGF_OP_BNOT ? ~x :
			  n->op == CGF_OP_NEG ? -x : x;
		break;
	case CGF_N_COND:
		n->is_const = a->is_const && b->is_const && c->is_const;
		n->cval = a->cval ? b->cval : c->cval;
		break;
	case CGF_N_BINARY:
		n->is_const = a->is_const && b->is_const;
		x = a->cval;
		y = b->cval;
		switch (n->op) {
		case CGF_OP_LOR: n->cval = x || y; break;
		case CGF_OP_LAND: n->cval = x && y; break;
		case CGF_OP_BOR: n->cval = x | y; break;
		case CGF_OP_BXOR: n->cval = x ^ y; break;
		case CGF_OP_BAND: n->cval = x & y; break;
		case CGF_OP_EQ: n->cval = x == y; break;
		case CGF_OP_NE: n->cval = x != y; break;
		case CGF_OP_LT: n->cval = x < y; break;
		case CGF_OP_LE: n->cval = x <= y; break;
		case CGF_OP_GT: n->cval = x > y; break;
		case CGF_OP_GE: n->cval = x >= y; break;
		case CGF_OP_SHL: n->cval = x << (y & 63); break;
		case CGF_OP_SHR: n->cval = x >> (y & 63); break;
		case CGF_OP_ADD: n->cval = x + y; break;
		case CGF_OP_SUB: n->cval = x - y; break;
		case CGF_OP_MUL: n->cval = x * y; break;
		case CGF_OP_DIV: n->cval = y ? x / y : 0; break;
		case CGF_OP_MOD: n->cval = y ? x % y : x; break;
		default: n->is_const = 0; break;
		}
		break;
	default:
		n->is_const = 0;
		break;
	}
	if (!n->is_const)
		n->cval = 0;
	n->effects = n->kind == CGF_N_SETOP || (a && a->effects) || (b && b->effects) ||
		     (c && c->effects);
	return 0;
}

int cgf_expr_parse(const char *text, const struct cgf_parse_opts *opts,
		   struct cgf_expr **out, struct cgf_error *err)
{
	struct parser p = { 0 };
	struct cgf_expr *e;
	struct cgf_set *s;
	size_t i;

	memset(err, 0, sizeof(*err));
	*out = NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	p.s = text;
	p.n = strlen(text);
	p.line = 1;
	p.opts = opts;
	p.err = err;
	p.e = e;
	for (i = 0; i < p.n; i++)
		if (text[i] == '\n' && i + 1 < p.n)
			err->multiline = 1;

	if (p.n > CGF_EXPR_MAX_TEXT) {
		fail_at(&p, 0, 0, "filter too long (%zu bytes, at most %u)", p.n, CGF_EXPR_MAX_TEXT);
		goto out;
	}
	while (!p.failed && peek(&p)->kind == T_SETREF)
		parse_decl(&p);
	if (!p.failed && peek(&p)->kind == T_EOF) {
		fail_tok(&p, peek(&p), "empty filter: expected an expression");
		goto out;
	}
	e->root = parse_cond(&p);
	if (!p.failed && peek(&p)->kind != T_EOF) {
		struct token t = next(&p);

		if (!p.failed)
			unexpected(&p, &t, "an operator or end of filter");
	}
	if (!p.failed && e->root->type != CGF_T_INT)
		want_int(&p, e->root);
	if (!p.failed) {
		if (cgf_expr_postorder(e->root, settle_node, NULL)) {
			p.nomem = true;
			fail_at(&p, 0, 0, "out of memory");
			goto out;
		}
		for (s = e->sets; s; s = s->next)
			if (s->declared == 2)
				s->declared = 1;
	}
out:
	if (p.failed) {
		int r = p.nomem ? -ENOMEM : -EINVAL;

		cgf_expr_free(e);
		return r;
	}
	*out = e;
	return 0;
}

void cgf_expr_free(struct cgf_expr *e)
{
	struct cgf_set *s;

	if (!e)
		return;
	for (s = e->sets; s; s = s->next) {
		free(s->ranges);
		free(s->cidrs);
		free(s->hosts);
	}
	arena_free(e->arena);
	free(e);
}

/* The length of the character at s (before end) if it can be shown as it
 * is: printable ASCII, a tab, or a whole UTF-8 sequence; 0 if not (a
 * control character, a byte that is no UTF-8), shown as '?'. */
static size_t shown_len(const unsigned char *s, const unsigned char *end)
{
	size_t n, i;

	if (*s == '\t' || (*s >= 0x20 && *s < 0x7f))
		return 1;
	n = *s >= 0xc2 && *s <= 0xdf ? 2 : *s >= 0xe0 && *s <= 0xef ? 3 : *s >= 0xf0 && *s <= 0xf4 ? 4 : 0;
	if (!n || (size_t)(end - s) < n)
		return 0;
	for (i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/* Bytes from .. to of a line, each character as shown_len() says; with
 * caret, blanks of the same widths up to there instead, then '^'. */
static void show_span(FILE *f, const char *from, const char *to, bool caret)
{
	const unsigned char *p = (const unsigned char *)from, *e = (const unsigned char *)to;

	while (p < e) {
		size_t n = shown_len(p, e);

		if (caret)
			fputc(*p == '\t' ? '\t' : ' ', f);
		else if (n)
			fwrite(p, 1, n, f);
		else
			fputc('?', f);
		p += n ? n : 1;
	}
	if (caret)
		fputc('^', f);
}

void cgf_error_show_place(FILE *f, const char *text, const struct cgf_error *err)
{
	const char *line = text, *end, *from, *to, *at;
	int i;

	if (!err->line || !err->col)
		return;
	for (i = 1; i < err->line && line; i++) {
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	if (!line)
		return;
	end = strchr(line, '\n');
	if (!end)
		end = line + strlen(line);
	if (end > line && end[-1] == '\r')
		end--;
	at = line + err->col - 1;
	if (at > end)
		at = end;
	/* a window of the line: 70 bytes before the error, 30 after, cut at
	 * UTF-8 character starts */
	from = at - line > 70 ? at - 70 : line;
	while (from > line && ((unsigned char)*from & 0xc0) == 0x80)
		from--;
	to = end - at > 30 ? at + 30 : end;
	while (to < end && ((unsigned char)*to & 0xc0) == 0x80)
		to++;
	/* a character that cannot be shown as it is (a control character,
	 * a byte that is no UTF-8) is a '?': one column, as its caret counts */
	fprintf(f, "  %s", from > line ? "..." : "");
	show_span(f, from, to, false);
	fprintf(f, "%s\n  %s", to < end ? "..." : "", from > line ? "   " : "");
	show_span(f, from, at, true);
	fputc('\n', f);
}

void cgf_error_format(const struct cgf_error *err, char *buf, size_t len)
{
	if (!err->col)
		snprintf(buf, len, "%s", err->msg);
	else if (err->multiline)
		snprintf(buf, len, "line %d, column %d: %s", err->line, err->col, err->msg);
	else
		snprintf(buf, len, "column %d: %s", err->col, err->msg);
}


char *cgf_read_text(const char *path, char *why, size_t whylen)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "re") : stdin;
	size_t len = 0, cap = 0;
	char *buf = NULL;

	if (!f) {
		snprintf(why, whylen, "cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		size_t n;

		if (len + 4096 + 1 > cap) {
			char *p = realloc(buf, cap = cap ? cap * 2 : 65536);

			if (!p) {
				snprintf(why, whylen, "cannot read %s: out of memory", path);
				goto fail;
			}
			buf = p;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (len > CGF_EXPR_MAX_TEXT) {
			snprintf(why, whylen, "cannot read %s: larger than %u bytes (16 MiB)", path,
				 CGF_EXPR_MAX_TEXT);
			goto fail;
		}
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		snprintf(why, whylen, "cannot read %s: %s", path, strerror(errno));
		goto fail;
	}
	buf[len] = 0;
	/* a filter cut short at a NUL would be another filter */
	if (strlen(buf) != len) {
		snprintf(why, whylen, "cannot read %s: it contains a NUL byte", path);
		goto fail;
	}
	if (f != stdin)
		fclose(f);
	return buf;
fail:
	if (f != stdin)
		fclose(f);
	free(buf);
	return NULL;
}

/*
 * The identity the kernel records for the file open at fd: its superblock's
 * s_dev and its inode number, as /proc/self/fdinfo shows them for a lock
 * held through fd ("lock: ... MAJ:MIN:INO", MAJOR(i_sb->s_dev) and
 * MINOR() in hex).  stat() is not always that: btrfs reports a
 * subvolume's own device, overlayfs may report a lower layer's.  An open
 * file description lock, read, on one byte: taken and given back at once.
 */
#ifndef F_OFD_SETLK
#define F_OFD_SETLK 37   /* (without _GNU_SOURCE, as port-firewall's checker builds) */
#endif

int cgf_exe_identify_fd(int fd, struct cgf_exe *out)
{
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
	char path[64], buf[4096], *p;
	unsigned int maj, min;
	unsigned long long ino;
	ssize_t n;
	int info, r = -ENOENT;

	if (fcntl(fd, F_OFD_SETLK, &fl))
		return -errno;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	info = open(path, O_RDONLY | O_CLOEXEC);
	n = info < 0 ? -1 : read(info, buf, sizeof(buf) - 1);
	if (info >= 0)
		close(info);
	fl.l_type = F_UNLCK;
	fcntl(fd, F_OFD_SETLK, &fl);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	for (p = strstr(buf, "lock:"); p && *p && *p != '\n'; p++) {
		if (p[-1] == ' ' && sscanf(p, "%x:%x:%llu", &maj, &min, &ino) == 3) {
			out->dev = (uint64_t)maj << 20 | min;
			out->ino = ino;
			r = 0;
			break;
		}
	}
	return r;
}

int cgf_exe_resolve(const char *path, struct cgf_exe *out, char *why, size_t whylen)
{
	struct stat st;
	char magic[2];
	ssize_t n;
	int fd;

	memset(out, 0, sizeof(*out));
	if (path[0] != '/') {
		snprintf(why, whylen, "\"%s\": an executable is named by its absolute path", path);
		return -EINVAL;
	}
	if (strlen(path) >= sizeof(out->path)) {
		snprintf(why, whylen, "path longer than %zu bytes", sizeof(out->path) - 1);
		return -ENAMETOOLONG;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st)) {
		int r = -errno;

		if (fd >= 0)
			close(fd);
		snprintf(why, whylen, "cannot find executable \"%s\": %s", path, strerror(-r));
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(why, whylen, "\"%s\" is not a regular file", path);
		return -EINVAL;
	}
	/* a script: the kernel runs its interpreter, whose file its sockets
	 * carry; named, it would match nothing (a rule to block it, nothing) */
	n = pread(fd, magic, 2, 0);
	if (n < 0) {
		int r = -errno;

		close(fd);
		snprintf(why, whylen, "cannot read executable \"%s\": %s", path, strerror(-r));
		return r;
	}
	if (n == 2 && magic[0] == '#' && magic[1] == '!') {
		close(fd);
		snprintf(why, whylen, "\"%s\" is a script (#!): its sockets are its interpreter's, so it would match none; name the interpreter or use cgfilter run",
			 path);
		return -EINVAL;
	}
	/* as the kernel records it; if the lock cannot be had (a writer holds
	 * one), stat's view, which is the kernel's on most file systems */
	if (cgf_exe_identify_fd(fd, out)) {
		out->dev = (uint64_t)major(st.st_dev) << 20 | minor(st.st_dev);
		out->ino = st.st_ino;
	}
	close(fd);
	snprintf(out->path, sizeof(out->path), "%s", path);
	return 0;
}
