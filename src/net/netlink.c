/* SPDX-License-Identifier: Apache-2.0 */
#include "net/netlink.h"
#include "common/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/tc_act/tc_mirred.h>
#include <linux/if_ether.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct nl_sock
{
  struct mnl_socket *sock;
  unsigned portid;
  unsigned seq;
};

int
cl_net_nl_open (struct nl_sock **out, cl_error_t *err)
{
  struct nl_sock *nl = calloc (1, sizeof *nl);
  if (nl == NULL)
    return cl_error_errno (err, "netlink");
  nl->sock = mnl_socket_open2 (NETLINK_ROUTE, SOCK_CLOEXEC);
  if (nl->sock == NULL || mnl_socket_bind (nl->sock, 0, MNL_SOCKET_AUTOPID) < 0)
    {
      cl_error_errno (err, "netlink socket");
      cl_net_nl_close (nl);
      return -1;
    }
  nl->portid = mnl_socket_get_portid (nl->sock);
  nl->seq = (unsigned)time (NULL);
  *out = nl;
  return 0;
}

int
cl_net_nl_open_in_netns (int nsfd, struct nl_sock **out, cl_error_t *err)
{
  cleanup_close int self = open ("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  int r;
  if (self < 0)
    return cl_error_errno (err, "open `/proc/thread-self/ns/net`");
  if (setns (nsfd, CLONE_NEWNET) < 0)
    return cl_error_errno (err, "setns into the instance's network namespace");
  r = cl_net_nl_open (out, err);
  if (setns (self, CLONE_NEWNET) < 0)
    abort (); /* the thread would act on the wrong namespace from now on */
  return r;
}

void
cl_net_nl_close (struct nl_sock *nl)
{
  if (nl == NULL)
    return;
  if (nl->sock)
    mnl_socket_close (nl->sock);
  free (nl);
}

/* Sends one request and reads until its ACK (or DONE for dumps); cb sees
   every data message.  Returns -errno on a netlink error. */
static int
nl_talk (struct nl_sock *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  unsigned seq = ++nl->seq;
  ssize_t n;
  int r;

  nlh->nlmsg_seq = seq;
  /* A dump ends with DONE; an ACK after it would stray into the next
     request.  (NLM_F_DUMP's bits are NLM_F_EXCL|NLM_F_REPLACE in NEW
     requests, hence the type test.) */
  if (!(nlh->nlmsg_type == RTM_GETLINK && (nlh->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP))
    nlh->nlmsg_flags |= NLM_F_ACK;
  if (mnl_socket_sendto (nl->sock, nlh, nlh->nlmsg_len) < 0)
    return -errno;
  do
    {
      n = mnl_socket_recvfrom (nl->sock, buf, sizeof buf);
      if (n < 0)
        return -errno;
      r = mnl_cb_run (buf, n, seq, nl->portid, cb, data);
    }
  while (r > 0);
  return r < 0 ? -errno : 0;
}

static struct nlmsghdr *
link_msg (char *buf, int type, int flags, int ifindex)
{
  struct nlmsghdr *nlh = mnl_nlmsg_put_header (buf);
  struct ifinfomsg *ifm;
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | flags;
  ifm = mnl_nlmsg_put_extra_header (nlh, sizeof *ifm);
  ifm->ifi_family = AF_UNSPEC;
  ifm->ifi_index = ifindex;
  return nlh;
}

/* The start of an RTM_NEWLINK that creates interface `name`, up. */
static struct nlmsghdr *
new_link_msg (char *buf, const char *name)
{
  struct nlmsghdr *nlh = link_msg (buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
  struct ifinfomsg *ifm = mnl_nlmsg_get_payload (nlh);
  ifm->ifi_flags = ifm->ifi_change = IFF_UP;
  mnl_attr_put_strz (nlh, IFLA_IFNAME, name);
  return nlh;
}

/* The MTU (if > 0) and the IFLA_LINKINFO nest of a link of `kind`; returns
   the open IFLA_INFO_DATA nest, closed with link_info_end. */
static struct nlattr *
link_info_start (struct nlmsghdr *nlh, int mtu, const char *kind, struct nlattr **linkinfo)
{
  if (mtu > 0)
    mnl_attr_put_u32 (nlh, IFLA_MTU, mtu);
  *linkinfo = mnl_attr_nest_start (nlh, IFLA_LINKINFO);
  mnl_attr_put_strz (nlh, IFLA_INFO_KIND, kind);
  return mnl_attr_nest_start (nlh, IFLA_INFO_DATA);
}

static void
link_info_end (struct nlmsghdr *nlh, struct nlattr *linkinfo, struct nlattr *data)
{
  mnl_attr_nest_end (nlh, data);
  mnl_attr_nest_end (nlh, linkinfo);
}

static int
fail (cl_error_t *err, int r, const char *what, const char *name)
{
  return cl_error_make (err, -r, "netlink: %s `%s`", what, name);
}

struct index_query
{
  int index;
};

static int
index_cb (const struct nlmsghdr *nlh, void *data)
{
  struct ifinfomsg *ifm = mnl_nlmsg_get_payload (nlh);
  ((struct index_query *)data)->index = ifm->ifi_index;
  return MNL_CB_OK;
}

int
cl_net_nl_link_index (struct nl_sock *nl, const char *name, cl_error_t *err)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = link_msg (buf, RTM_GETLINK, 0, 0);
  struct index_query q = { 0 };
  int r;
  mnl_attr_put_strz (nlh, IFLA_IFNAME, name);
  r = nl_talk (nl, nlh, index_cb, &q);
  if (r == -ENODEV)
    return 0;
  if (r < 0)
    return fail (err, r, "look up link", name);
  return q.index;
}

int
cl_net_nl_bridge_add (struct nl_sock *nl, const char *name, int vlan_filtering, int mtu,
                      cl_error_t *err)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = new_link_msg (buf, name);
  struct nlattr *linkinfo, *data;
  int r;

  data = link_info_start (nlh, mtu, "bridge", &linkinfo);
  /* No STP delay: ports forward at once, as instances expect. */
  mnl_attr_put_u32 (nlh, IFLA_BR_FORWARD_DELAY, 0);
  mnl_attr_put_u32 (nlh, IFLA_BR_STP_STATE, 0);
  if (vlan_filtering)
    {
      mnl_attr_put_u8 (nlh, IFLA_BR_VLAN_FILTERING, 1);
      /* Ports carry no VLAN until given one: nothing leaks through VLAN 1. */
      mnl_attr_put_u16 (nlh, IFLA_BR_VLAN_DEFAULT_PVID, 0);
    }
  link_info_end (nlh, linkinfo, data);
  r = nl_talk (nl, nlh, NULL, NULL);
  return r < 0 ? fail (err, r, "create bridge", name) : 0;
}

int
cl_net_nl_veth_add (struct nl_sock *nl, const char *name, int master_index, const char *peer_name,
                    const uint8_t peer_mac[6], int peer_nsfd, int mtu, cl_error_t *err)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = new_link_msg (buf, name);
  struct ifinfomsg *peer_ifm;
  struct nlattr *linkinfo, *data, *peer;
  int r;

  if (master_index > 0)
    mnl_attr_put_u32 (nlh, IFLA_MASTER, master_index);
  data = link_info_start (nlh, mtu, "veth", &linkinfo);
  peer = mnl_attr_nest_start (nlh, VETH_INFO_PEER);
  peer_ifm = mnl_nlmsg_put_extra_header (nlh, sizeof *peer_ifm);
  peer_ifm->ifi_family = AF_UNSPEC; /* not IFF_UP: veth_open fails (ENOTCONN) before pairing */
  mnl_attr_put_strz (nlh, IFLA_IFNAME, peer_name);
  mnl_attr_put (nlh, IFLA_ADDRESS, 6, peer_mac);
  if (mtu > 0)
    mnl_attr_put_u32 (nlh, IFLA_MTU, mtu);
  mnl_attr_put_u32 (nlh, IFLA_NET_NS_FD, peer_nsfd);
  mnl_attr_nest_end (nlh, peer);
  link_info_end (nlh, linkinfo, data);
  r = nl_talk (nl, nlh, NULL, NULL);
  if (r < 0)
    return cl_error_make (err, -r, "netlink: create veth pair `%s` / `%s` (in the instance)", name,
                          peer_name);
  return 0;
}

int
cl_net_nl_vlan_add (struct nl_sock *nl, const char *name, int link_index, int vlan_id, int mtu,
                    cl_error_t *err)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = new_link_msg (buf, name);
  struct nlattr *linkinfo, *data;
  int r;

  mnl_attr_put_u32 (nlh, IFLA_LINK, link_index);
  data = link_info_start (nlh, mtu, "vlan", &linkinfo);
  mnl_attr_put_u16 (nlh, IFLA_VLAN_ID, vlan_id);
  link_info_end (nlh, linkinfo, data);
  r = nl_talk (nl, nlh, NULL, NULL);
  return r < 0 ? fail (err, r, "create vlan interface", name) : 0;
}

int
cl_net_nl_link_set (struct nl_sock *nl, int ifindex, int up, int master_index, int mtu,
                    cl_error_t *err)
{
  char buf[MNL_SOCKET_BUFFER_SIZE], name[IFNAMSIZ] = "?";
  struct nlmsghdr *nlh = link_msg (buf, RTM_NEWLINK, 0, ifindex);
  struct ifinfomsg *ifm = mnl_nlmsg_get_payload (nlh);
  int r;

  if (up >= 0)
    {
      ifm->ifi_change = IFF_UP;
      ifm->ifi_flags = up ? IFF_UP : 0;
    }
  if (master_index > 0)
    mnl_attr_put_u32 (nlh, IFLA_MASTER, master_index);
  if (mtu > 0)
    mnl_attr_put_u32 (nlh, IFLA_MTU, mtu);
  r = nl_talk (nl, nlh, NULL, NULL);
  if (r < 0)
    {
      snprintf (name, sizeof name, "%d", ifindex);
      return fail (err, r, "set link", name);
    }
  return 0;
}

int
cl_net_nl_link_del (struct nl_sock *nl, const char *name, cl_error_t *err)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = link_msg (buf, RTM_DELLINK, 0, 0);
  int r;
  mnl_attr_put_strz (nlh, IFLA_IFNAME, name);
  r = nl_talk (nl, nlh, NULL, NULL);
  if (r == -ENODEV)
    return 0;
  return r < 0 ? fail (err, r, "delete link", name) : 0;
}

int
cl_net_nl_addr_add (struct nl_sock *nl, int ifindex, uint32_t addr, int prefix_len, cl_error_t *err)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = mnl_nlmsg_put_header (buf);
  struct ifaddrmsg *ifa;
  uint32_t a = htonl (addr), bcast = htonl (addr | (prefix_len ? ~0u >> prefix_len : ~0u));
  int r;

  nlh->nlmsg_type = RTM_NEWADDR;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE;
  ifa = mnl_nlmsg_put_extra_header (nlh, sizeof *ifa);
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = prefix_len;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = ifindex;
  mnl_attr_put_u32 (nlh, IFA_LOCAL, a);
  mnl_attr_put_u32 (nlh, IFA_ADDRESS, a);
  if (prefix_len < 31)
    mnl_attr_put_u32 (nlh, IFA_BROADCAST, bcast);
  r = nl_talk (nl, nlh, NULL, NULL);
  return r < 0 ? cl_error_make (err, -r, "netlink: add address") : 0;
}

int
cl_net_nl_route_add_default (struct nl_sock *nl, uint32_t gateway, cl_error_t *err)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = mnl_nlmsg_put_header (buf);
  struct rtmsg *rtm;
  int r;

  nlh->nlmsg_type = RTM_NEWROUTE;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE;
  rtm = mnl_nlmsg_put_extra_header (nlh, sizeof *rtm);
  rtm->rtm_family = AF_INET;
  rtm->rtm_dst_len = 0;
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = RTPROT_STATIC;
  rtm->rtm_scope = RT_SCOPE_UNIVERSE;
  rtm->rtm_type = RTN_UNICAST;
  mnl_attr_put_u32 (nlh, RTA_GATEWAY, htonl (gateway));
  r = nl_talk (nl, nlh, NULL, NULL);
  return r < 0 ? cl_error_make (err, -r, "netlink: add default route") : 0;
}

int
cl_net_nl_bridge_vlan (struct nl_sock *nl, int ifindex, int vid, int pvid_untagged, int self,
                       int del, cl_error_t *err)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = mnl_nlmsg_put_header (buf);
  struct ifinfomsg *ifm;
  struct bridge_vlan_info info = { .vid = vid };
  struct nlattr *spec;
  int r;

  nlh->nlmsg_type = del ? RTM_DELLINK : RTM_SETLINK;
  nlh->nlmsg_flags = NLM_F_REQUEST;
  ifm = mnl_nlmsg_put_extra_header (nlh, sizeof *ifm);
  ifm->ifi_family = AF_BRIDGE;
  ifm->ifi_index = ifindex;
  if (pvid_untagged)
    info.flags = BRIDGE_VLAN_INFO_PVID | BRIDGE_VLAN_INFO_UNTAGGED;
  spec = mnl_attr_nest_start (nlh, IFLA_AF_SPEC);
  if (self)
    mnl_attr_put_u16 (nlh, IFLA_BRIDGE_FLAGS, BRIDGE_FLAGS_SELF);
  mnl_attr_put (nlh, IFLA_BRIDGE_VLAN_INFO, sizeof info, &info);
  mnl_attr_nest_end (nlh, spec);
  r = nl_talk (nl, nlh, NULL, NULL);
  if (r == -ENOENT && del)
    return 0;
  return r < 0 ? cl_error_make (err, -r, "netlink: %s bridge vlan %d", del ? "delete" : "add", vid)
               : 0;
}

struct foreach_data
{
  void (*fn) (const char *name, void *data);
  void *data;
};

static int
foreach_attr_cb (const struct nlattr *attr, void *data)
{
  const char **name = data;
  if (mnl_attr_get_type (attr) == IFLA_IFNAME && mnl_attr_validate (attr, MNL_TYPE_STRING) == 0)
    *name = mnl_attr_get_str (attr);
  return MNL_CB_OK;
}

static int
foreach_cb (const struct nlmsghdr *nlh, void *data)
{
  struct foreach_data *d = data;
  const char *name = NULL;
  mnl_attr_parse (nlh, sizeof (struct ifinfomsg), foreach_attr_cb, &name);
  if (name)
    d->fn (name, d->data);
  return MNL_CB_OK;
}

int
cl_net_nl_link_foreach (struct nl_sock *nl, void (*fn) (const char *name, void *data), void *data,
                        cl_error_t *err)
{
  char buf[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = link_msg (buf, RTM_GETLINK, NLM_F_DUMP, 0);
  struct foreach_data d = { fn, data };
  int r = nl_talk (nl, nlh, foreach_cb, &d);
  return r < 0 ? cl_error_make (err, -r, "netlink: list links") : 0;
}

int
cl_net_nl_tap_create (const char *name, uid_t owner, cl_error_t *err)
{
  cleanup_close int fd = open ("/dev/net/tun", O_RDWR | O_CLOEXEC);
  struct ifreq ifr = { 0 };

  if (fd < 0)
    return cl_error_errno (err, "open `/dev/net/tun`");
  snprintf (ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (ioctl (fd, TUNSETIFF, &ifr) < 0)
    return cl_error_errno (err, "create tap `%s`", name);
  if (ioctl (fd, TUNSETOWNER, (unsigned long)owner) < 0 || ioctl (fd, TUNSETPERSIST, 1UL) < 0)
    return cl_error_errno (err, "make tap `%s` persistent", name);
  return 0;
}

/* One tc message on ifindex: RTM_NEWQDISC, RTM_DELQDISC or RTM_NEWTFILTER. */
static struct nlmsghdr *
tc_msg (char *buf, int type, int ifindex, uint32_t parent, uint32_t handle, uint32_t info)
{
  struct nlmsghdr *nlh = mnl_nlmsg_put_header (buf);
  struct tcmsg *t;

  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL;
  t = mnl_nlmsg_put_extra_header (nlh, sizeof *t);
  t->tcm_family = AF_UNSPEC;
  t->tcm_ifindex = ifindex;
  t->tcm_parent = parent;
  t->tcm_handle = handle;
  t->tcm_info = info;
  return nlh;
}

int
cl_net_nl_tc_redirect (struct nl_sock *nl, int from, int to, cl_error_t *err)
{
  char buf[MNL_SOCKET_BUFFER_SIZE], name[16];
  struct nlmsghdr *nlh;
  struct nlattr *opts, *acts, *act, *aopts;
  struct tc_mirred m = { .action = TC_ACT_STOLEN, .eaction = TCA_EGRESS_REDIR, .ifindex = to };
  int r;

  snprintf (name, sizeof name, "%d", from);
  /* `tc qdisc add dev FROM ingress`; one already there is an earlier
     join's, left when its VM ended (its tap gone, its filter redirects
     nowhere): `tc qdisc del dev FROM ingress` (and its filters), again */
  for (int tries = 0;; tries++)
    {
      nlh = tc_msg (buf, RTM_NEWQDISC, from, TC_H_INGRESS, TC_H_MAKE (TC_H_INGRESS, 0), 0);
      mnl_attr_put_strz (nlh, TCA_KIND, "ingress");
      r = nl_talk (nl, nlh, NULL, NULL);
      if (r != -EEXIST || tries > 0)
        break;
      nlh = tc_msg (buf, RTM_DELQDISC, from, TC_H_INGRESS, TC_H_MAKE (TC_H_INGRESS, 0), 0);
      nlh->nlmsg_flags = NLM_F_REQUEST;
      r = nl_talk (nl, nlh, NULL, NULL);
      if (r < 0)
        return fail (err, r, "remove the stale ingress qdisc of link", name);
    }
  if (r < 0)
    return fail (err, r, "add an ingress qdisc to link", name);
  /* `tc filter add dev FROM parent ffff: prio 1 protocol all matchall
     action mirred egress redirect dev TO` */
  nlh = tc_msg (buf, RTM_NEWTFILTER, from, TC_H_MAKE (TC_H_INGRESS, 0), 0,
                TC_H_MAKE (1u << 16, htons (ETH_P_ALL)));
  mnl_attr_put_strz (nlh, TCA_KIND, "matchall");
  opts = mnl_attr_nest_start (nlh, TCA_OPTIONS);
  acts = mnl_attr_nest_start (nlh, TCA_MATCHALL_ACT);
  act = mnl_attr_nest_start (nlh, 1);
  mnl_attr_put_strz (nlh, TCA_ACT_KIND, "mirred");
  aopts = mnl_attr_nest_start (nlh, TCA_ACT_OPTIONS);
  mnl_attr_put (nlh, TCA_MIRRED_PARMS, sizeof m, &m);
  mnl_attr_nest_end (nlh, aopts);
  mnl_attr_nest_end (nlh, act);
  mnl_attr_nest_end (nlh, acts);
  mnl_attr_nest_end (nlh, opts);
  r = nl_talk (nl, nlh, NULL, NULL);
  return r < 0 ? fail (err, r, "redirect the ingress of link", name) : 0;
}
