/* SPDX-License-Identifier: Apache-2.0 */
/* linux.netDevices (runtime-spec 1.2): host interfaces moved into the
   container's network namespace under their new names at create, and back
   to the runtime's namespace under their own names at delete.  Plain
   rtnetlink (the runtime is linked static: no libmnl).  And the loopback
   of a network namespace the runtime makes, up (as runc and crun). */
#include "container/netdev.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static bool
valid_ifname (const char *s)
{
  size_t n = strlen (s);
  return n > 0 && n < IFNAMSIZ && strcmp (s, ".") != 0 && strcmp (s, "..") != 0
         && strpbrk (s, "/: \t\n") == NULL;
}

int
cl_ctr_netdev_validate (json_t *linux_obj, bool own_netns, cl_error_t *err)
{
  json_t *devs = NULL, *v;
  const char *host;

  if (cl_json_object (linux_obj, "linux", "netDevices", &devs, err) < 0)
    return -1;
  if (devs == NULL || json_object_size (devs) == 0)
    return 0;
  if (!own_netns)
    return cl_error_make (err, 0,
                          "linux.netDevices: needs a new `network` namespace in "
                          "linux.namespaces");
  json_object_foreach (devs, host, v)
  {
    cleanup_free char *c = cl_json_path ("linux.netDevices", host);
    const char *name = NULL;
    if (!json_is_object (v))
      return cl_error_make (err, 0, "%s: expected an object", c);
    if (cl_json_string (v, c, "name", &name, err) < 0)
      return -1;
    if (!valid_ifname (host))
      return cl_error_make (err, 0, "%s: `%s` is not an interface name", c, host);
    if (name && !valid_ifname (name))
      return cl_error_make (err, 0, "%s.name: `%s` is not an interface name", c, name);
    if (if_nametoindex (host) == 0)
      return cl_error_make (err, 0, "%s: no interface `%s` here", c, host);
  }
  return 0;
}

static void
put_attr (struct nlmsghdr *h, unsigned short type, const void *data, size_t len)
{
  struct rtattr *a = (struct rtattr *)((char *)h + NLMSG_ALIGN (h->nlmsg_len));
  a->rta_type = type;
  a->rta_len = (unsigned short)RTA_LENGTH (len);
  memcpy (RTA_DATA (a), data, len);
  h->nlmsg_len = NLMSG_ALIGN (h->nlmsg_len) + RTA_ALIGN (a->rta_len);
}

/* Moves link `ifindex` (of the namespace `nl` speaks to) into the
   namespace given by pid or fd (ns_attr IFLA_NET_NS_PID / _FD), renamed. */
static int
link_move (int nl, int ifindex, unsigned short ns_attr, uint32_t ns, const char *name)
{
  union
  {
    struct nlmsghdr h;
    char buf[256];
  } req = { 0 };
  char reply[512];
  struct ifinfomsg *ifi;
  struct nlmsghdr *r = (struct nlmsghdr *)reply;
  ssize_t n;

  req.h.nlmsg_len = NLMSG_LENGTH (sizeof *ifi);
  req.h.nlmsg_type = RTM_NEWLINK;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  ifi = NLMSG_DATA (&req.h);
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
  put_attr (&req.h, ns_attr, &ns, sizeof ns);
  put_attr (&req.h, IFLA_IFNAME, name, strlen (name) + 1);
  if (send (nl, &req, req.h.nlmsg_len, 0) < 0)
    return -errno;
  n = recv (nl, reply, sizeof reply, 0);
  if (n < 0)
    return -errno;
  if (n < (ssize_t)NLMSG_LENGTH (sizeof (struct nlmsgerr)) || r->nlmsg_type != NLMSG_ERROR)
    return -EPROTO;
  return ((struct nlmsgerr *)NLMSG_DATA (r))->error;
}

static int
netlink_socket (void)
{
  return socket (AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
}

int
cl_ctr_netdev_move_in (json_t *devs, pid_t pid, cl_error_t *err)
{
  cleanup_close int nl = netlink_socket ();
  const char *host;
  json_t *v;

  if (json_object_size (devs) == 0)
    return 0;
  if (nl < 0)
    return cl_error_errno (err, "linux.netDevices: netlink socket");
  json_object_foreach (devs, host, v)
  {
    const char *name = json_string_value (json_object_get (v, "name"));
    int idx = (int)if_nametoindex (host), r;
    if (idx == 0)
      return cl_error_errno (err, "linux.netDevices.%s: no such interface", host);
    r = link_move (nl, idx, IFLA_NET_NS_PID, (uint32_t)pid, name ? name : host);
    if (r < 0)
      return cl_error_make (err, -r, "linux.netDevices.%s: move into the container as `%s`", host,
                            name ? name : host);
  }
  return 0;
}

/* Into the network namespace of `pid`; *self: ours, to come back to.
   -errno. */
static int
netns_enter (pid_t pid, int *self)
{
  cleanup_close int theirs = -1;
  char path[64];

  snprintf (path, sizeof path, "/proc/%d/ns/net", (int)pid);
  *self = open ("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  theirs = open (path, O_RDONLY | O_CLOEXEC);
  if (*self < 0 || theirs < 0 || setns (theirs, CLONE_NEWNET) < 0)
    return -errno;
  return 0;
}

int
cl_ctr_netdev_loopback_up (void)
{
  cleanup_close int sk = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr = { .ifr_name = "lo" };

  if (sk < 0 || ioctl (sk, SIOCGIFFLAGS, &ifr) < 0)
    return -errno;
  if (ifr.ifr_flags & IFF_UP)
    return 0;
  ifr.ifr_flags |= IFF_UP;
  return ioctl (sk, SIOCSIFFLAGS, &ifr) < 0 ? -errno : 0;
}

int
cl_ctr_netdev_loopback_up_in (pid_t pid)
{
  cleanup_close int self = -1;
  int r = netns_enter (pid, &self);

  if (r == 0)
    r = cl_ctr_netdev_loopback_up ();
  if (self >= 0 && setns (self, CLONE_NEWNET) < 0 && r == 0)
    r = -errno;
  return r;
}

void
cl_ctr_netdev_move_out (json_t *devs, pid_t pid)
{
  cleanup_close int self = -1, nl = -1;
  const char *host;
  json_t *v;

  if (json_object_size (devs) == 0 || pid <= 0)
    return;
  if (netns_enter (pid, &self) < 0)
    {
      cl_warn ("linux.netDevices: the container's network namespace is gone: its interfaces "
               "went with it (virtual) or back to the first namespace (physical)");
      return;
    }
  /* A socket speaks to the namespace it was made in. */
  nl = netlink_socket ();
  json_object_foreach (devs, host, v)
  {
    const char *name = json_string_value (json_object_get (v, "name"));
    int idx = (int)if_nametoindex (name ? name : host), r = -ENODEV;
    if (nl >= 0 && idx > 0)
      r = link_move (nl, idx, IFLA_NET_NS_FD, (uint32_t)self, host);
    if (r < 0)
      cl_warn ("linux.netDevices.%s: move back to the host: %s", host, strerror (-r));
  }
  if (setns (self, CLONE_NEWNET) < 0)
    cl_warn ("linux.netDevices: return to the runtime's network namespace: %s", strerror (errno));
}
