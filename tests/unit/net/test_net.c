/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <linux/netfilter/nfnetlink.h>

#include "net/net_internal.h"
#include "net/ipam.h"
#include "net/net.h"
#include "net/nft.h"

static uint32_t
ip (unsigned a, unsigned b, unsigned c, unsigned d)
{
  return (a << 24) | (b << 16) | (c << 8) | d;
}

static void
expect_cidr_error (const char *s, const char *msg)
{
  cl_error_t err = NULL;
  uint32_t net;
  int prefix;
  assert_true (cl_net_ipam_parse_cidr (s, "--subnet", &net, &prefix, &err) < 0);
  assert_non_null (strstr (err->msg, msg));
  assert_int_equal (strncmp (err->msg, "--subnet: ", 10), 0);
  cl_error_release (&err);
}

static void
test_parse_cidr (void **state)
{
  cl_error_t err = NULL;
  uint32_t net;
  int prefix;
  (void)state;
  assert_int_equal (cl_net_ipam_parse_cidr ("10.87.0.0/24", "--subnet", &net, &prefix, &err), 0);
  assert_int_equal (net, ip (10, 87, 0, 0));
  assert_int_equal (prefix, 24);
  assert_int_equal (cl_net_ipam_parse_cidr ("172.16.0.0/12", "--subnet", &net, &prefix, &err), 0);
  expect_cidr_error ("10.87.0.0", "expected an IPv4 CIDR");
  expect_cidr_error ("10.87.0.0/", "prefix length must be 8-30");
  expect_cidr_error ("10.87.0.0/31", "prefix length must be 8-30");
  expect_cidr_error ("10.87.0.0/7", "prefix length must be 8-30");
  expect_cidr_error ("10.87.0.0/24x", "prefix length must be 8-30");
  expect_cidr_error ("10.87.0/24", "is not an IPv4 address");
  expect_cidr_error ("300.1.1.0/24", "is not an IPv4 address");
  expect_cidr_error ("10.87.0.9/24", "did you mean 10.87.0.0/24?");
  expect_cidr_error ("", "expected an IPv4 CIDR");
}

static void
test_overlap (void **state)
{
  (void)state;
  assert_true (cl_net_ipam_overlap (ip (10, 0, 0, 0), 8, ip (10, 87, 3, 0), 24));
  assert_true (cl_net_ipam_overlap (ip (10, 87, 3, 0), 24, ip (10, 0, 0, 0), 8));
  assert_true (cl_net_ipam_overlap (ip (10, 87, 3, 0), 24, ip (10, 87, 3, 128), 25));
  assert_false (cl_net_ipam_overlap (ip (10, 87, 3, 0), 24, ip (10, 87, 4, 0), 24));
  assert_false (cl_net_ipam_overlap (ip (10, 87, 3, 0), 25, ip (10, 87, 3, 128), 25));
}

static void
test_next_free (void **state)
{
  uint32_t net = ip (10, 87, 0, 0);
  uint32_t used[] = { ip (10, 87, 0, 2), ip (10, 87, 0, 3), ip (10, 87, 0, 5) };
  uint32_t full[] = { ip (10, 87, 0, 2), ip (10, 87, 0, 3), ip (10, 87, 0, 4), ip (10, 87, 0, 5),
                      ip (10, 87, 0, 6) };
  char s[16];
  (void)state;
  assert_int_equal (cl_net_ipam_gateway (net), ip (10, 87, 0, 1));
  assert_int_equal (cl_net_ipam_next_free (net, 24, NULL, 0), ip (10, 87, 0, 2));
  assert_int_equal (cl_net_ipam_next_free (net, 24, used, 3), ip (10, 87, 0, 4));
  assert_int_equal (cl_net_ipam_next_free (net, 24, used, 2), ip (10, 87, 0, 4));
  /* /29: .2-.6 usable (.1 gateway, .7 broadcast) */
  assert_int_equal (cl_net_ipam_next_free (net, 29, full, 4), ip (10, 87, 0, 6));
  assert_int_equal (cl_net_ipam_next_free (net, 29, full, 5), 0);
  cl_net_ipam_format (ip (192, 168, 10, 254), s);
  assert_string_equal (s, "192.168.10.254");
  cl_net_ipam_format (cl_net_ipam_mask (20), s);
  assert_string_equal (s, "255.255.240.0");
}

static void
test_port_forward_spec (void **state)
{
  cl_error_t err = NULL;
  uint16_t hp, ipt;
  const char *proto;
  (void)state;
  assert_int_equal (cl_net_parse_port_forward ("8080:80", &hp, &ipt, &proto, &err), 0);
  assert_int_equal (hp, 8080);
  assert_int_equal (ipt, 80);
  assert_string_equal (proto, "tcp");
  assert_int_equal (cl_net_parse_port_forward ("53:5353/udp", &hp, &ipt, &proto, &err), 0);
  assert_string_equal (proto, "udp");
  assert_int_equal (ipt, 5353);
  static const char *const bad[]
      = { "8080", ":80", "8080:", "0:80", "65536:80", "80:0", "80:80/sctp", "a:b", "80:80/" };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      assert_true (cl_net_parse_port_forward (bad[i], &hp, &ipt, &proto, &err) < 0);
      assert_non_null (strstr (err->msg, "port forward"));
      cl_error_release (&err);
    }
}

static void
test_nft_script (void **state)
{
  struct net_row n = { .id = 3,
                       .name = "web",
                       .subnet = ip (10, 88, 1, 0),
                       .prefix = 24,
                       .mode = CL_NET_NAT,
                       .l3 = "clb-abcd-3" };
  char *s;
  (void)state;
  s = cl_net_nft_network_script (&n, "abcd");
  assert_non_null (strstr (s, "add table ip cloison-abcd-web\n"));
  assert_non_null (strstr (s, "add chain ip cloison-abcd-web owner_abcd\n"));
  assert_non_null (strstr (s, "ip saddr 10.88.1.0/24 oifname != \"clb-abcd-3\" masquerade"));
  /* Bridged frames (in and out by the network's link) leave the chain
     at its first rule, by index; other networks are matched by name. */
  assert_non_null (strstr (s, "forward { type filter hook forward priority filter; }\n"
                              "add rule ip cloison-abcd-web forward iif \"clb-abcd-3\" oif "
                              "\"clb-abcd-3\" accept\n"));
  assert_non_null (
      strstr (s, "iif \"clb-abcd-3\" oif != \"clb-abcd-3\" oifname \"clb-*\" drop"));
  assert_null (strstr (s, "forward iifname"));
  assert_null (strstr (s, "forward oifname"));
  assert_non_null (strstr (s, "dnat ip to tcp dport map @fwd_tcp"));
  assert_non_null (strstr (s, "ct status dnat accept"));
  assert_null (strstr (s, "input iifname"));
  assert_non_null (
      strstr (s, "ip saddr 10.88.1.0/24 ip daddr 10.88.1.0/24 ip daddr != 10.88.1.1 notrack"));
  assert_non_null (strstr (s, "oifname \"clb-abcd-3\" ct status dnat masquerade"));
  free (s);
  n.mode = CL_NET_ISOLATED;
  s = cl_net_nft_network_script (&n, "abcd");
  assert_null (strstr (s, "masquerade"));
  assert_non_null (strstr (s, "forward iif \"clb-abcd-3\" oif != \"clb-abcd-3\" drop"));
  assert_non_null (strstr (s, "forward oif \"clb-abcd-3\" iif != \"clb-abcd-3\" drop"));
  assert_non_null (strstr (s, "input iifname \"clb-abcd-3\" drop"));
  free (s);
  n.mode = CL_NET_ROUTED;
  s = cl_net_nft_network_script (&n, "abcd");
  assert_null (strstr (s, "masquerade"));
  assert_null (strstr (s, "ct status dnat"));
  free (s);
}

/* The nf_tables probe reports an error (never exits, as libnftables
   would) for a subsystem the kernel lacks, and returns for the real one
   (0 where the kernel has nf_tables: the integration tests rely on it). */
static void
test_nft_probe (void **state)
{
  (void)state;
  assert_int_not_equal (cl_net_nft_probe_subsys (NFNL_SUBSYS_COUNT + 7), 0);
  assert_true (cl_net_nft_probe_subsys (NFNL_SUBSYS_NFTABLES) >= 0);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_parse_cidr), cmocka_unit_test (test_overlap),
    cmocka_unit_test (test_next_free),  cmocka_unit_test (test_port_forward_spec),
    cmocka_unit_test (test_nft_script), cmocka_unit_test (test_nft_probe),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
