/* SPDX-License-Identifier: Apache-2.0 */
#include "net/dnsmasq.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "net/ipam.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

pid_t
cl_net_dnsmasq_pid (const char *dir)
{
  cleanup_free char *pidfile = cl_strdup_printf ("%s/dnsmasq.pid", dir);
  cleanup_free char *text = NULL, *cmdline_path = NULL, *cmdline = NULL;
  size_t len;
  long pid;

  if (cl_read_file (pidfile, &text, NULL, NULL) < 0)
    return 0;
  pid = strtol (text, NULL, 10);
  if (pid <= 1)
    return 0;
  /* The pid may have been reused: ours names its pid file. */
  cmdline_path = cl_strdup_printf ("/proc/%ld/cmdline", pid);
  if (cl_read_file (cmdline_path, &cmdline, &len, NULL) < 0)
    return 0;
  for (size_t i = 0; i + 1 < len; i++)
    if (cmdline[i] == '\0')
      cmdline[i] = ' ';
  if (strstr (cmdline, "dnsmasq") == NULL || strstr (cmdline, pidfile) == NULL)
    return 0;
  return (pid_t)pid;
}

static void
touch (const char *dir, const char *name)
{
  cleanup_free char *path = cl_strdup_printf ("%s/%s", dir, name);
  int fd = open (path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0)
    close (fd);
}

int
cl_net_dnsmasq_start (const char *dir, const struct net_row *n, cl_error_t *err)
{
  char subnet[16], mask[16];
  cleanup_free char *a_pid = cl_strdup_printf ("--pid-file=%s/dnsmasq.pid", dir);
  cleanup_free char *a_if = cl_strdup_printf ("--interface=%s", n->l3);
  cleanup_free char *a_range = NULL;
  cleanup_free char *a_dhcp = cl_strdup_printf ("--dhcp-hostsfile=%s/dhcp-hosts", dir);
  cleanup_free char *a_hosts = cl_strdup_printf ("--addn-hosts=%s/hosts", dir);
  cleanup_free char *a_leases = cl_strdup_printf ("--dhcp-leasefile=%s/leases", dir);
  cleanup_free char *log = cl_strdup_printf ("%s/dnsmasq.log", dir);
  cleanup_free char *a_mtu
      = cl_strdup_printf ("--dhcp-option=option:mtu,%d", n->mtu ? n->mtu : 1500);
  cleanup_free char *msg = NULL;
  int status;
  pid_t pid;

  cl_net_ipam_format (n->subnet, subnet);
  cl_net_ipam_format (cl_net_ipam_mask (n->prefix), mask);
  a_range = cl_strdup_printf ("--dhcp-range=%s,static,%s,1h", subnet, mask);
  touch (dir, "hosts");
  touch (dir, "dhcp-hosts");
  const char *argv[]
      = { "dnsmasq", "--conf-file=/dev/null", a_pid, "--user=root", "--group=root", a_if,
          "--except-interface=lo", "--bind-interfaces", a_range, a_dhcp, a_hosts, a_leases, a_mtu,
          "--no-hosts", "--dhcp-authoritative", "--domain-needed",
          /* an isolated network has no way out, DNS included */
          n->mode == CL_NET_ISOLATED ? "--no-resolv" : NULL, NULL };
  pid = fork ();
  if (pid < 0)
    return cl_error_errno (err, "fork");
  if (pid == 0)
    {
      /* A daemon must not hold our caller's pipes open. */
      int null = open ("/dev/null", O_RDWR), logfd = open (log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2 (null, 0);
      dup2 (null, 1);
      dup2 (logfd >= 0 ? logfd : null, 2);
      cl_close_fds_from (3);
      setsid ();
      execv ("/usr/sbin/dnsmasq", (char **)argv);
      execvp ("dnsmasq", (char **)argv);
      _exit (127);
    }
  /* dnsmasq's first process exits once the daemon is ready, or with the
     reason it could not start. */
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return cl_error_errno (err, "wait for dnsmasq");
  if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
    return 0;
  if (WIFEXITED (status) && WEXITSTATUS (status) == 127)
    return cl_error_make (err, 0, "dnsmasq: not found (install dnsmasq-base)");
  cl_read_file (log, &msg, NULL, NULL);
  if (msg)
    msg[strcspn (msg, "\n")] = '\0';
  return cl_error_make (err, 0, "dnsmasq for network `%s` failed: %s", n->name,
                        msg && *msg ? msg : "no message");
}

void
cl_net_dnsmasq_stop (const char *dir)
{
  pid_t pid = cl_net_dnsmasq_pid (dir);
  if (pid <= 0)
    return;
  kill (pid, SIGTERM);
  /* Wait (at most ~1 s) so that the bridge it binds can go at once. */
  for (int i = 0; i < 200 && cl_net_dnsmasq_pid (dir) == pid; i++)
    {
      struct timespec ts = { 0, 5 * 1000 * 1000 };
      nanosleep (&ts, NULL);
    }
}

void
cl_net_dnsmasq_reload (const char *dir)
{
  pid_t pid = cl_net_dnsmasq_pid (dir);
  if (pid > 0)
    kill (pid, SIGHUP);
}

/* The inode of a process's network namespace, or 0. */
static ino_t
netns_of (const char *pid)
{
  struct stat st;
  cleanup_free char *path = cl_strdup_printf ("/proc/%s/ns/net", pid);
  return stat (path, &st) == 0 ? st.st_ino : 0;
}

void
cl_net_dnsmasq_foreach (const char *netroot, void (*fn) (pid_t pid, const char *name, void *data),
                        void *data)
{
  cleanup_free char *prefix = cl_strdup_printf ("--pid-file=%s/", netroot);
  cleanup_dir DIR *proc = opendir ("/proc");
  ino_t ours = netns_of ("self");
  struct dirent *de;

  while (proc && (de = readdir (proc)))
    {
      cleanup_free char *path = NULL, *cmdline = NULL;
      size_t len, off;
      if (de->d_name[0] < '1' || de->d_name[0] > '9')
        continue;
      path = cl_strdup_printf ("/proc/%s/cmdline", de->d_name);
      if (cl_read_file (path, &cmdline, &len, NULL) < 0 || len == 0)
        continue;
      if (strcmp (cmdline, "dnsmasq") != 0 && strstr (cmdline, "/dnsmasq") == NULL)
        continue;
      /* argv: NUL-separated; ours names its pid file ROOT/net/NAME/dnsmasq.pid */
      for (off = 0; off < len; off += strlen (cmdline + off) + 1)
        {
          const char *arg = cmdline + off, *name, *slash;
          if (strncmp (arg, prefix, strlen (prefix)) != 0)
            continue;
          name = arg + strlen (prefix);
          slash = strchr (name, '/');
          if (slash && strcmp (slash, "/dnsmasq.pid") == 0 && netns_of (de->d_name) == ours)
            {
              cleanup_free char *n = strndup (name, (size_t)(slash - name));
              fn ((pid_t)atol (de->d_name), n, data);
            }
          break;
        }
    }
}
