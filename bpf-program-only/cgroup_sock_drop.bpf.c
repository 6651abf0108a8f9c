// SPDX-License-Identifier: GPL-2.0-only
/*
 * The minimal template: a cgroup_skb program that drops every packet.
 * Start here to write a filter of your own.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "cgf_vocab.h"

SEC("cgroup/skb")
int cgroup_sock_drop(struct __sk_buff *skb)
{
	return CGF_DROP;
}

char LICENSE[] SEC("license") = "GPL";
