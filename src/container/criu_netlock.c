/* SPDX-License-Identifier: Apache-2.0 */
/* CRIU's network lock left behind in an external network namespace.
   Dumping a tree in a network namespace of its own, CRIU (3.17) locks
   that namespace: with `network-lock nftables`, a table `inet CRIU-PID`
   (PID: the dumped root's) whose chains drop every packet.  Restoring, it
   unlocks the table named after the NEW root's pid, which does not
   exist; when CRIU restores the namespace itself, the dumped one is gone
   anyway, but a namespace given to it (external: podman's, the
   manager's) keeps the dump's table and drops everything.  Removed here
   with one nfnetlink batch (the runtime is static: no libnftables). */
#include "container/criu_netlock.h"

#include <endian.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static struct nlmsghdr *
put_msg (char *buf, size_t *off, uint16_t type, uint16_t flags, uint8_t family, uint16_t res_id,
         uint32_t seq)
{
  struct nlmsghdr *h = (struct nlmsghdr *)(buf + *off);
  struct nfgenmsg *g;
  h->nlmsg_len = NLMSG_LENGTH (sizeof *g);
  h->nlmsg_type = type;
  h->nlmsg_flags = NLM_F_REQUEST | flags;
  h->nlmsg_seq = seq;
  g = NLMSG_DATA (h);
  g->nfgen_family = family;
  g->version = NFNETLINK_V0;
  g->res_id = htobe16 (res_id);
  return h;
}

/* Deletes table inet `name` in the network namespace of the caller: 0,
   or -errno (-ENOENT: no such table). */
static int
delete_table (const char *name)
{
  char buf[512] = { 0 }, reply[1024];
  size_t off = 0;
  struct nlmsghdr *h;
  struct nlattr *a;
  int nl = socket (AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER), r = -EPROTO;

  if (nl < 0)
    return -errno;
  h = put_msg (buf, &off, NFNL_MSG_BATCH_BEGIN, 0, AF_UNSPEC, NFNL_SUBSYS_NFTABLES, 1);
  off += NLMSG_ALIGN (h->nlmsg_len);
  h = put_msg (buf, &off, (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_DELTABLE, NLM_F_ACK, NFPROTO_INET,
               0, 2);
  a = (struct nlattr *)((char *)h + NLMSG_ALIGN (h->nlmsg_len));
  a->nla_type = NFTA_TABLE_NAME;
  a->nla_len = (uint16_t)(NLA_HDRLEN + strlen (name) + 1);
  memcpy ((char *)a + NLA_HDRLEN, name, strlen (name) + 1);
  h->nlmsg_len = NLMSG_ALIGN (h->nlmsg_len) + NLA_ALIGN (a->nla_len);
  off += NLMSG_ALIGN (h->nlmsg_len);
  h = put_msg (buf, &off, NFNL_MSG_BATCH_END, 0, AF_UNSPEC, NFNL_SUBSYS_NFTABLES, 3);
  off += NLMSG_ALIGN (h->nlmsg_len);
  if (send (nl, buf, off, 0) < 0)
    r = -errno;
  else
    {
      ssize_t n = recv (nl, reply, sizeof reply, 0);
      struct nlmsghdr *rh = (struct nlmsghdr *)reply;
      if (n < 0)
        r = -errno;
      else if (n >= (ssize_t)NLMSG_LENGTH (sizeof (struct nlmsgerr))
               && rh->nlmsg_type == NLMSG_ERROR)
        r = ((struct nlmsgerr *)NLMSG_DATA (rh))->error;
    }
  close (nl);
  return r;
}

int
cl_ctr_criu_unlock_netns (int netns_fd, pid_t dumped_root)
{
  char name[32];
  int st;
  pid_t pid;

  snprintf (name, sizeof name, "CRIU-%d", (int)dumped_root);
  pid = fork ();
  if (pid < 0)
    return -errno;
  if (pid == 0)
    {
      int r = setns (netns_fd, CLONE_NEWNET) < 0 ? -errno : delete_table (name);
      _exit (r == 0 ? 0 : r == -ENOENT ? 1 : 2);
    }
  while (waitpid (pid, &st, 0) < 0)
    if (errno != EINTR)
      return -errno;
  return WIFEXITED (st) && WEXITSTATUS (st) <= 1 ? 0 : -EIO;
}
