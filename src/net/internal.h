/* Shared between the files of src/net (not for other modules). */
#ifndef CLOISON_NET_INTERNAL_H
#define CLOISON_NET_INTERNAL_H

#include "net/net.h"

#include <stdint.h>

/* One row of the networks table. */
struct net_row
{
  int64_t id;
  char name[129];
  uint32_t subnet;
  int prefix;
  enum cl_net_mode mode;
  int vlan;
  int mtu;
  char l3[16]; /* the interface holding the gateway: bridge or VLAN interface */
  char state[16];
};

const char *net_mode_name (enum cl_net_mode mode);

#endif
