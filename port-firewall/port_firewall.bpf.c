// SPDX-License-Identifier: GPL-2.0-only
/*
 * port-firewall: a cgroup_skb program that passes a packet when the FILTER
 * expression it was built with is non-zero.  filter.h is generated from
 * FILTER by cgfilter-expr, which checks it first.  One object serves ingress
 * and egress: the section sets no expected attach type.
 */
#include "cgf_parse.bpf.h"
#include "filter.h"

SEC("cgroup/skb")
int port_firewall(struct __sk_buff *skb)
{
	struct cgf_pkt p;
	__u64 v;

	if (cgf_parse(skb, &p))
		return CGF_DROP;
	v = port_firewall_filter(&p);
	/* hide v's range from clang: for 'tcp_psh >> tcp_fin' it knows v is
	 * 0 or 1 and returns it as is, which the verifier cannot prove */
	barrier_var(v);
	return v ? CGF_PASS : CGF_DROP;
}

char LICENSE[] SEC("license") = "GPL";
