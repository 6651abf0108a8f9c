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

	if (cgf_parse(skb, &p))
		return CGF_DROP;
	return port_firewall_filter(&p) ? CGF_PASS : CGF_DROP;
}

char LICENSE[] SEC("license") = "GPL";
