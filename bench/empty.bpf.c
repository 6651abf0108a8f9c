// SPDX-License-Identifier: GPL-2.0-only
/*
 * The floor of the per-packet bench: a cgroup_skb program that passes every
 * packet and does nothing else, so its cost is the test-run machinery's.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "cgf_vocab.h"

SEC("cgroup/skb")
int bench_empty(struct __sk_buff *skb)
{
	return CGF_PASS;
}

char LICENSE[] SEC("license") = "GPL";
