// SPDX-License-Identifier: GPL-2.0-only
/*
 * The vocabulary of the language, one table: the parser takes its names
 * from here, and so do cgfilter-expr's help, cgfilter's help, the man
 * pages' list of names ('make vocab', checked by tests/02-vocab.sh) and so
 * port-firewall's FILTER check.  The numbers are include/cgf_vocab.h's.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "expr.h"

#define TCP_FLAG(name, mask, what, doc) \
	{ name, -1, 0, mask, "1 if TCP and the " what " flag is set", doc }

/* doc: roff for the man pages; NULL continues the entry above (one item
 * for the six tcp_* names, one for src_ip and dst_ip,
 * one for local_port and remote_port, ...). */
const struct cgf_vocab_entry cgf_vocab[] = {
	{ "ip", CGF_F_IP, 0, 0, "1 for IPv4 packets", "1 for IPv4, else 0." },
	{ "ipv6", CGF_F_IPV6, 0, 0, "1 for IPv6 packets", "1 for IPv6, else 0." },
	{ "tcp", CGF_F_TCP, 0, 0, "1 for TCP", "1 for TCP over IPv4 or IPv6, else 0." },
	{ "udp", CGF_F_UDP, 0, 0, "1 for UDP", "1 for UDP over IPv4 or IPv6, else 0." },
	{ "icmp", CGF_F_ICMP, 0, 0, "1 for ICMP on IPv4 and ICMPv6 on IPv6",
	  "1 for ICMP on IPv4 (protocol 1) and ICMPv6 on IPv6 (58), else 0." },
	{ "src_port", CGF_F_SRC_PORT, 0, 0, "TCP/UDP source port, 0 for other protocols",
	  "TCP or UDP source port, 0 to 65535; 0 for other protocols and for a\n"
	  "fragment that is not the first." },
	{ "dst_port", CGF_F_DST_PORT, 0, 0, "TCP/UDP destination port, 0 for other protocols",
	  "TCP or UDP destination port, 0 to 65535; likewise." },
	{ "local_port", CGF_F_LOCAL_PORT, 0, 0,
	  "the service's port: dst_port if received, src_port if sent",
	  "The service's port and the peer's, the same on both directions: on a\n"
	  "packet received (ingress) local_port is dst_port and remote_port is\n"
	  "src_port; on a packet sent (egress) local_port is src_port and\n"
	  "remote_port is dst_port.  So one filter of a server says\n"
	  ".B \"tcp && local_port == 80\"\n"
	  "for its requests and its answers.  The direction is the kernel's\n"
	  "(a received packet has an incoming interface, loopback's too), so this\n"
	  "holds for every packet: also a SYN\\-ACK or a RST sent without a full\n"
	  "socket of its own, and the reply of an unconnected UDP socket.  Both are\n"
	  "0 where the ports are (other protocols, a fragment that is not the\n"
	  "first).  A socket filter (cgfilter wrap) only sees packets received:\n"
	  "there local is dst and remote is src." },
	{ "remote_port", CGF_F_REMOTE_PORT, 0, 0,
	  "the peer's port: src_port if received, dst_port if sent", NULL },
	{ "len", CGF_F_LEN, 0, 0, "packet length in bytes from the IP header on",
	  "The packet's length in bytes from the first byte of the IP header on (the\n"
	  "kernel's\n.BR skb\\->len ),\n"
	  "0 to 4294967295, not the IP total length field: a UDP datagram over IPv4\n"
	  "with 472 bytes of payload has len 20 + 8 + 472 = 500.\n"
	  "On egress, segmentation offload can show packets longer than the MTU." },
	{ "ip_proto", CGF_F_IP_PROTO, 0, 0, "transport protocol number (after IPv6 extension headers)",
	  "The transport protocol number, 0 to 255: IPv4's protocol field, or on IPv6\n"
	  "the next header that ends the extension header chain (for a fragment that\n"
	  "is not the first, the fragment header's next header)." },
	{ "icmp_type", CGF_F_ICMP_TYPE, 0, 0, "ICMP/ICMPv6 type, 0 for other protocols",
	  "ICMP or ICMPv6 type, 0 to 255; 0 for other protocols." },
	{ "icmp_code", CGF_F_ICMP_CODE, 0, 0, "ICMP/ICMPv6 code, 0 for other protocols",
	  "ICMP or ICMPv6 code, 0 to 255; 0 for other protocols." },
	{ "tcp_flags", CGF_F_TCP_FLAGS, 0, 0,
	  "TCP flags byte (FIN 1, SYN 2, RST 4, PSH 8, ACK 16, URG 32, ECE 64, CWR 128)",
	  "The TCP flags byte, 0 to 255: FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08,\n"
	  "ACK 0x10, URG 0x20, ECE 0x40, CWR 0x80; 0 if not TCP." },
	{ "frag", CGF_F_FRAG, 0, 0, "1 for any IP fragment",
	  "1 if the packet is an IP fragment, the first or a later one (IPv4: the\n"
	  "more fragments flag or an offset; IPv6: a fragment header), else 0." },
	{ "ttl", CGF_F_TTL, 0, 0, "IPv4 TTL or IPv6 hop limit",
	  "The IPv4 time to live or the IPv6 hop limit, 0 to 255." },
	TCP_FLAG("tcp_fin", 0x01, "FIN",
		 "1 if the packet is TCP and has that flag set, else 0; short for\n"
		 ".BI \"(tcp_flags & \" MASK \") != 0\" ."),
	TCP_FLAG("tcp_syn", 0x02, "SYN", NULL),
	TCP_FLAG("tcp_rst", 0x04, "RST", NULL),
	TCP_FLAG("tcp_psh", 0x08, "PSH", NULL),
	TCP_FLAG("tcp_ack", 0x10, "ACK", NULL),
	TCP_FLAG("tcp_urg", 0x20, "URG", NULL),
	{ "src_ip", CGF_A_SRC, 1, 0, "source address (cgfilter): == ADDR[/LEN] or in SET",
	  "The source and destination addresses, IPv4 or IPv6, compared in network\n"
	  "byte order as written.\n"
	  "They are not numbers: they can only be tested with\n.BR == ,\n.B !=\nand\n.B in\n"
	  "(see\n.BR \"FILTER LANGUAGE\" ).\n"
	  "An IPv4 prefix only matches IPv4 packets and an IPv6 prefix only IPv6\n"
	  "packets (an IPv4\\-mapped address such as\n.B ::ffff:192.0.2.1\n"
	  "is IPv6); a non\\-IP packet is in no set and equal to no address." },
	{ "dst_ip", CGF_A_DST, 1, 0, "destination address (cgfilter): == ADDR[/LEN] or in SET", NULL },
	{ "local_ip", CGF_A_LOCAL, 1, 0,
	  "the service's address (cgfilter): dst_ip if received, src_ip if sent",
	  "The service's address and the peer's, as\n.B local_port\nand\n.BR remote_port :\n"
	  "on a packet received local_ip is dst_ip and remote_ip is src_ip, on a\n"
	  "packet sent the other way round; tested as src_ip and dst_ip are." },
	{ "remote_ip", CGF_A_REMOTE, 1, 0,
	  "the peer's address (cgfilter): src_ip if received, dst_ip if sent", NULL },
	{ "exe", -1, 2, 0, "the executable that made the packet's socket (cgfilter): == \"PATH\" or in SET",
	  "The executable file of the process that made the packet's socket, recorded\n"
	  "when the socket was made; compared with\n"
	  ".BI \"== \\(dq\" PATH \\(dq\n"
	  "(an absolute path in double quotes), with\n"
	  ".B !=\n"
	  "or with\n"
	  ".B in\n"
	  "a set of them.  A file is named by its path and matched by its identity\n"
	  "(device and inode) as it was when the filter was set: a copy at another\n"
	  "path does not match, the file renamed still does, and a file replaced (a\n"
	  "package upgrade writes a new inode) matches only once the filter is set\n"
	  "again.  A packet whose socket has no recorded executable (made before\n"
	  "executables were recorded, or none at all) equals no executable: see\n"
	  ".BR \"EXECUTABLES\" ." },
};
const size_t cgf_vocab_len = sizeof(cgf_vocab) / sizeof(cgf_vocab[0]);


const char *cgf_field_name(int field)
{
	size_t i;

	for (i = 0; i < cgf_vocab_len; i++)
		if (!cgf_vocab[i].addr && cgf_vocab[i].field == field)
			return cgf_vocab[i].name;
	return "?";
}

const char *cgf_addr_name(int which)
{
	size_t i;

	for (i = 0; i < cgf_vocab_len; i++)
		if (cgf_vocab[i].addr == 1 && cgf_vocab[i].field == which)
			return cgf_vocab[i].name;
	return "?";
}


/* the names of an item: "tcp_fin", "tcp_syn", ... up to the next doc */
static size_t item_end(size_t i)
{
	size_t j = i + 1;

	while (j < cgf_vocab_len && !cgf_vocab[j].doc)
		j++;
	return j;
}

void cgf_vocab_print(FILE *f, enum cgf_vocab_format fmt, bool addrs)
{
	size_t i, j, end, col;

	for (i = 0, col = 0; i < cgf_vocab_len; i = end) {
		end = item_end(i);
		if (cgf_vocab[i].addr && !addrs)
			continue;
		switch (fmt) {
		case CGF_VOCAB_NAMES:
			for (j = i; j < end; j++)
				fprintf(f, "%s\n", cgf_vocab[j].name);
			break;
		case CGF_VOCAB_MAN:
			fputs(i ? ".TP\n" : ".TP 12\n", f);
			if (end - i == 1) {
				fprintf(f, ".B %s\n", cgf_vocab[i].name);
			} else {
				fputs(".BR", f);
				for (j = i; j < end; j++)
					fprintf(f, " %s%s", cgf_vocab[j].name, j + 1 < end ? " \", \"" : "");
				fputc('\n', f);
			}
			fprintf(f, "%s\n", cgf_vocab[i].doc);
			break;
		case CGF_VOCAB_GRAMMAR: /* the field production, four names a line */
			for (j = i; j < end; j++, col++) {
				if (cgf_vocab[j].addr)
					continue;
				fprintf(f, "%s\"%s\"", !col ? "field      = " : col % 4 ? " | " : "\n           | ",
					cgf_vocab[j].name);
			}
			break;
		}
	}
	if (fmt == CGF_VOCAB_GRAMMAR)
		fputs(" ;\n", f);
}
