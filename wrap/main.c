// SPDX-License-Identifier: GPL-2.0-only
/*
 * cgfilter-wrap: 'cgfilter wrap' as a small program of its own, which an
 * administrator may give the one capability TCP needs:
 *   setcap cap_net_admin=ep /usr/local/bin/cgfilter-wrap
 * It uses it only to attach and lock the filters, and drops every
 * capability before it runs the command.  See cgfilter-wrap(8).
 */
#include "wrap.h"

int main(int argc, char **argv)
{
	return cgf_wrap_main("cgfilter-wrap", argc, argv);
}
