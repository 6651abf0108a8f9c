// SPDX-License-Identifier: GPL-2.0-only
/*
 * port-firewall: a cgroup_skb program that passes a packet when the FILTER
 * expression it was built with is non-zero.  filter.h is generated from
 * FILTER by cgfilter-expr, which checks it first.  One object serves ingress
 * and egress: the section sets no expected attach type.
 */
#include "cgf_parse.bpf.h"
#include "filter.h"

/*
 * The filter runs in functions of its own, for the verifier's sake:
 *  - filter() is straight-line code (include/cgf_expr.bpf.h) that can be
 *    longer than a BPF jump reaches (32767 instructions); inlined, it would
 *    sit between the parser's jumps and the "drop" they go to.  A call has
 *    no such limit.
 *  - run_filter() is global, so the verifier checks it once, on its own,
 *    for any packet fields (Linux 5.12 and later take a pointer there).  A
 *    static function is checked again for each path through the parser
 *    that reaches it knowing other field values (tcp is 1 on one, 0 on
 *    another): a filter of 2000 terms was checked some 30 times, one of
 *    20000 went past the verifier's million instructions.  The verifier
 *    takes a global function's pointer for one that may be NULL, hence the
 *    test.
 */
static __noinline __u64 filter(const struct cgf_pkt *p)
{
	return port_firewall_filter(p);
}

__noinline __u64 run_filter(const struct cgf_pkt *p)
{
	if (!p)
		return 0;
	return filter(p);
}

SEC("cgroup/skb")
int port_firewall(struct __sk_buff *skb)
{
	struct cgf_pkt p;
	__u64 v;

	if (cgf_parse(skb, &p))
		return CGF_DROP;
	v = run_filter(&p);
	/* hide v's range from clang: for 'tcp_psh >> tcp_fin' it knows v is
	 * 0 or 1 and returns it as is, which the verifier cannot prove */
	barrier_var(v);
	return v ? CGF_PASS : CGF_DROP;
}

char LICENSE[] SEC("license") = "GPL";
