/* SPDX-License-Identifier: Apache-2.0 */
#include "net/ipam.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint32_t
cl_net_ipam_mask (int prefix)
{
  return prefix == 0 ? 0 : ~0u << (32 - prefix);
}

int
cl_net_ipam_parse_cidr (const char *s, const char *what, uint32_t *net, int *prefix,
                        cl_error_t *err)
{
  char addr[INET_ADDRSTRLEN];
  const char *slash = strchr (s, '/');
  struct in_addr in;
  char *end;
  long p;

  if (slash == NULL || (size_t)(slash - s) >= sizeof addr)
    return cl_error_raise (err, CL_ERR_INVALID,
                           "%s: expected an IPv4 CIDR like 10.88.0.0/24, got `%s`", what, s);
  memcpy (addr, s, slash - s);
  addr[slash - s] = '\0';
  if (inet_pton (AF_INET, addr, &in) != 1)
    return cl_error_raise (err, CL_ERR_INVALID, "%s: `%s` is not an IPv4 address", what, addr);
  p = strtol (slash + 1, &end, 10);
  if (slash[1] == '\0' || *end != '\0' || p < 8 || p > 30)
    return cl_error_raise (err, CL_ERR_INVALID, "%s: prefix length must be 8-30, got `%s`", what,
                           slash + 1);
  *net = ntohl (in.s_addr);
  *prefix = (int)p;
  if (*net & ~cl_net_ipam_mask (*prefix))
    return cl_error_raise (
        err, CL_ERR_INVALID, "%s: `%s` has host bits set (did you mean %s/%d?)", what, s,
        (cl_net_ipam_format (*net & cl_net_ipam_mask (*prefix), addr), addr), *prefix);
  return 0;
}

int
cl_net_ipam_overlap (uint32_t a, int pa, uint32_t b, int pb)
{
  uint32_t m = cl_net_ipam_mask (pa < pb ? pa : pb);
  return (a & m) == (b & m);
}

void
cl_net_ipam_format (uint32_t addr, char out[16])
{
  snprintf (out, 16, "%u.%u.%u.%u", addr >> 24, (addr >> 16) & 0xff, (addr >> 8) & 0xff,
            addr & 0xff);
}

uint32_t
cl_net_ipam_gateway (uint32_t net)
{
  return net + 1;
}

uint32_t
cl_net_ipam_next_free (uint32_t net, int prefix, const uint32_t *used, size_t n_used)
{
  uint32_t broadcast = net | ~cl_net_ipam_mask (prefix);
  uint32_t candidate = cl_net_ipam_gateway (net) + 1;
  for (size_t i = 0; i < n_used && candidate < broadcast; i++)
    {
      if (used[i] < candidate)
        continue;
      if (used[i] > candidate)
        break;
      candidate++;
    }
  return candidate < broadcast ? candidate : 0;
}
