/* SPDX-License-Identifier: Apache-2.0 */
/* The network of a VM-isolated container (vm_container.h): the caller
   (podman, CNI) set up the container's network namespace with an
   interface in it; the shim enters that namespace, adds a tap for the
   VM, and redirects every frame between the interface and the tap (tc
   ingress + matchall + mirred, both ways, as Kata Containers does).  The
   guest's NIC takes the interface's MAC and the agent gives it the
   interface's IPv4 addresses and default route, so the caller's
   networking works unchanged.

   A network namespace has one such interface, and a frame can go to one
   VM only: the first VM-isolated container in a namespace (a pod) takes
   it; the tap of each is named after its container id (tapHASH_cl), and
   a later VM in the same namespace gets no NIC (lo only in the guest)
   instead of failing.  See docs/vm-isolation.md. */
#include "common/cleanup.h"
#include "common/util.h"
#include "container/spec.h"
#include "manager/vm_container.h"
#include "net/netlink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define VMCTR_TAP_SUFFIX "_cl"

struct links
{
  char first[IFNAMSIZ]; /* the first interface but lo and our taps */
  bool joined;          /* a tap of another VM is there */
};

static bool
is_vm_tap (const char *name)
{
  size_t n = strlen (name), k = strlen (VMCTR_TAP_SUFFIX);
  return strncmp (name, "tap", 3) == 0 && n > k && strcmp (name + n - k, VMCTR_TAP_SUFFIX) == 0;
}

static void
scan_link (const char *name, void *data)
{
  struct links *l = data;
  if (is_vm_tap (name))
    l->joined = true;
  else if (l->first[0] == '\0' && strcmp (name, "lo") != 0)
    snprintf (l->first, IFNAMSIZ, "%s", name);
}

/* tap + 8 hex digits of the id's FNV-1a hash + _cl: 14 bytes, unique per
   container of a namespace (ids are unique on the host). */
static void
tap_name (const char *id, char out[IFNAMSIZ])
{
  uint32_t h = 2166136261u;
  for (const char *p = id ? id : ""; *p; p++)
    h = (h ^ (uint8_t)*p) * 16777619u;
  snprintf (out, IFNAMSIZ, "tap%08x" VMCTR_TAP_SUFFIX, h);
}

static int
link_mac (const char *name, uint8_t mac[6], cl_error_t *err)
{
  cleanup_close int s = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr = { 0 };

  snprintf (ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
  if (s < 0 || ioctl (s, SIOCGIFHWADDR, &ifr) < 0)
    return cl_error_errno (err, "the MAC address of `%s`", name);
  memcpy (mac, ifr.ifr_hwaddr.sa_data, 6);
  return 0;
}

/* The default gateway of the namespace we are in (/proc/self/net/route). */
static char *
default_gateway (void)
{
  FILE *f = fopen ("/proc/self/net/route", "re");
  char line[256], *gw = NULL;

  while (f && gw == NULL && fgets (line, sizeof line, f))
    {
      char ifname[IFNAMSIZ + 1];
      unsigned dest, gateway;
      if (sscanf (line, "%16s %x %x", ifname, &dest, &gateway) == 3 && dest == 0 && gateway)
        {
          struct in_addr a = { .s_addr = gateway };
          gw = cl_xstrdup (inet_ntoa (a));
        }
    }
  if (f)
    fclose (f);
  return gw;
}

static json_t *
link_addrs (const char *name)
{
  struct ifaddrs *all = NULL;
  json_t *out = json_array ();

  if (getifaddrs (&all) < 0)
    return out;
  for (struct ifaddrs *a = all; a; a = a->ifa_next)
    if (a->ifa_addr && a->ifa_addr->sa_family == AF_INET && strcmp (a->ifa_name, name) == 0)
      {
        char ip[INET_ADDRSTRLEN];
        uint32_t mask = ntohl (((struct sockaddr_in *)a->ifa_netmask)->sin_addr.s_addr);
        int prefix = __builtin_popcount (mask);
        inet_ntop (AF_INET, &((struct sockaddr_in *)a->ifa_addr)->sin_addr, ip, sizeof ip);
        json_array_append_new (out, json_sprintf ("%s/%d", ip, prefix));
      }
  freeifaddrs (all);
  return out;
}

/* The host name of the UTS namespace the spec joins (a pod's: its
   containers carry no `hostname` of their own), or NULL. */
static char *
joined_hostname (json_t *linux_obj)
{
  const char *path = cl_ctr_spec_namespace_path (linux_obj, "uts");
  char name[HOST_NAME_MAX + 1];
  int fd;

  if (path == NULL || (fd = open (path, O_RDONLY | O_CLOEXEC)) < 0)
    return NULL;
  if (setns (fd, CLONE_NEWUTS) < 0 || gethostname (name, sizeof name) < 0)
    {
      close (fd);
      return NULL;
    }
  close (fd);
  name[sizeof name - 1] = '\0';
  return cl_xstrdup (name);
}

int
cl_mgr_vmctr_net_setup (json_t *linux_obj, const char *id, struct cl_mgr_vmctr_net *net,
                        cl_error_t *err)
{
  const char *path = cl_ctr_spec_namespace_path (linux_obj, "network");
  struct nl_sock *nl = NULL;
  struct links links = { .first = "" };
  const char *ifname = links.first;
  char tap[IFNAMSIZ], mac[18];
  cleanup_free char *gw = NULL;
  int fd, ifindex, tapindex, r = -1;

  memset (net, 0, sizeof *net);
  net->hostname = joined_hostname (linux_obj);
  if (path == NULL)
    return 0;
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return cl_error_errno (err, "linux.namespaces: network `%s`", path);
  if (setns (fd, CLONE_NEWNET) < 0)
    {
      close (fd);
      return cl_error_errno (err, "linux.namespaces: join network `%s`", path);
    }
  close (fd);
  if (cl_net_nl_open (&nl, err) < 0 || cl_net_nl_link_foreach (nl, scan_link, &links, err) < 0)
    goto out;
  if (ifname[0] == '\0' || links.joined)
    {
      /* only lo, or the interface already goes to another VM of this
         namespace: nothing to join */
      if (links.joined)
        fprintf (stderr,
                 "cloison-vmctr: `%s` of %s is joined to another VM already: this VM "
                 "has no NIC\n",
                 ifname, path);
      r = 0;
      goto out;
    }
  tap_name (id, tap);
  if (link_mac (ifname, net->mac, err) < 0)
    goto out;
  ifindex = cl_net_nl_link_index (nl, ifname, err);
  if (ifindex <= 0 || cl_net_nl_tap_create (tap, 0, err) < 0)
    goto out;
  net->tap = cl_xstrdup (tap);
  tapindex = cl_net_nl_link_index (nl, tap, err);
  if (tapindex <= 0 || cl_net_nl_link_set (nl, tapindex, 1, 0, 0, err) < 0
      || cl_net_nl_link_set (nl, ifindex, 1, 0, 0, err) < 0
      || cl_net_nl_tc_redirect (nl, ifindex, tapindex, err) < 0
      || cl_net_nl_tc_redirect (nl, tapindex, ifindex, err) < 0)
    goto out;
  gw = default_gateway ();
  snprintf (mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", net->mac[0], net->mac[1],
            net->mac[2], net->mac[3], net->mac[4], net->mac[5]);
  net->guest = json_pack ("[{s:s, s:o, s:s*}]", "mac", mac, "addrs", link_addrs (ifname),
                          "gateway", gw);
  r = 0;
out:
  if (r < 0)
    cl_error_wrap (err, "the VM's network");
  if (r < 0 && net->tap)
    {
      cl_error_t e = NULL;
      if (cl_net_nl_link_del (nl, net->tap, &e) < 0)
        cl_error_release (&e);
      free (net->tap);
      net->tap = NULL;
    }
  cl_net_nl_close (nl);
  return r;
}

void
cl_mgr_vmctr_net_release (struct cl_mgr_vmctr_net *net)
{
  struct nl_sock *nl = NULL;
  cl_error_t e = NULL;

  if (net->tap && cl_net_nl_open (&nl, &e) == 0)
    cl_net_nl_link_del (nl, net->tap, &e);
  cl_error_release (&e);
  cl_net_nl_close (nl);
  free (net->tap);
  free (net->hostname);
  json_decref (net->guest);
  memset (net, 0, sizeof *net);
}
