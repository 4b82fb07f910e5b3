/* SPDX-License-Identifier: Apache-2.0 */
/* GET /1.0/metrics: the Prometheus text exposition format (0.0.4).

   Per running instance, labelled name and type ("container", "vm"):
   CPU seconds, memory bytes, disk bytes read and written, and per
   network device the bytes and packets received and sent.  A container's
   come from its cgroup (v1 or v2: found through /proc/PID/cgroup and the
   mount table, so any layout works) and its network namespace's
   interfaces (/proc/PID/net/dev).  A VM's from its VMM process (/proc:
   CPU time, resident memory, I/O bytes) and the host side of its tap
   devices, seen from the guest (the tap's transmit is the guest's
   receive).  Then the server's own counters. */
#include "api/api_internal.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- reading /proc and /sys ---- */

static char *
read_text (const char *path)
{
  cleanup_close int fd = open (path, O_RDONLY | O_CLOEXEC);
  char *buf = NULL;
  size_t len = 0, cap = 0;
  ssize_t n;

  if (fd < 0)
    return NULL;
  for (;;)
    {
      if (cap - len < 4096)
        buf = realloc (buf, cap = cap * 2 + 8192);
      if (buf == NULL)
        return NULL;
      n = read (fd, buf + len, cap - len - 1);
      if (n <= 0)
        break;
      len += (size_t)n;
    }
  buf[len] = '\0';
  return buf;
}

/* Does the comma-separated list contain word? */
static bool
list_has (const char *list, size_t n, const char *word)
{
  size_t wl = strlen (word);
  const char *p = list, *end = list + n;

  while (p < end)
    {
      const char *comma = memchr (p, ',', (size_t)(end - p));
      const char *e = comma ? comma : end;
      if ((size_t)(e - p) == wl && strncmp (p, word, wl) == 0)
        return true;
      p = e + 1;
    }
  return false;
}

/* Where the hierarchy with `controller` is mounted (NULL: cgroup2). */
static char *
cgroup_mount (const char *mountinfo, const char *controller)
{
  cleanup_free char *copy = cl_xstrdup (mountinfo);
  char *save = NULL;

  for (char *line = strtok_r (copy, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      char *sep = strstr (line, " - "), *f[6], *s2 = NULL, *fs, *src, *opts;
      int n = 0;
      if (sep == NULL)
        continue;
      *sep = '\0';
      for (char *t = strtok_r (line, " ", &s2); t && n < 6; t = strtok_r (NULL, " ", &s2))
        f[n++] = t;
      fs = strtok_r (sep + 3, " ", &s2);
      src = strtok_r (NULL, " ", &s2);
      opts = strtok_r (NULL, " ", &s2);
      if (n < 5 || fs == NULL || src == NULL || opts == NULL || strcmp (f[3], "/") != 0)
        continue;
      if (controller == NULL
              ? strcmp (fs, "cgroup2") == 0
              : strcmp (fs, "cgroup") == 0 && list_has (opts, strlen (opts), controller))
        return cl_xstrdup (f[4]);
    }
  return NULL;
}

/* The text of a cgroup file of pid's: v1's hierarchy with `v1_ctrl`, or
   the unified one's `v2_file`.  *v2 tells which. */
static char *
cgroup_read (int pid, const char *mountinfo, const char *v1_ctrl, const char *v1_file,
             const char *v2_file, bool *v2)
{
  char path[64];
  cleanup_free char *groups = NULL;
  char *save = NULL, *v2_path = NULL;

  snprintf (path, sizeof path, "/proc/%d/cgroup", pid);
  groups = read_text (path);
  if (groups == NULL)
    return NULL;
  for (char *line = strtok_r (groups, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      char *c1 = strchr (line, ':'), *c2 = c1 ? strchr (c1 + 1, ':') : NULL;
      if (c2 == NULL)
        continue;
      if (c2 == c1 + 1 && strncmp (line, "0:", 2) == 0)
        v2_path = c2 + 1;
      else if (list_has (c1 + 1, (size_t)(c2 - c1 - 1), v1_ctrl))
        {
          cleanup_free char *mnt = cgroup_mount (mountinfo, v1_ctrl);
          cleanup_free char *file = NULL;
          if (mnt == NULL)
            return NULL;
          file = cl_strdup_printf ("%s%s/%s", mnt, c2 + 1, v1_file);
          *v2 = false;
          return read_text (file);
        }
    }
  if (v2_path)
    {
      cleanup_free char *mnt = cgroup_mount (mountinfo, NULL);
      cleanup_free char *file = NULL;
      char *text;
      if (mnt == NULL)
        return NULL;
      file = cl_strdup_printf ("%s%s/%s", mnt, v2_path, v2_file);
      text = read_text (file);
      if (text)
        *v2 = true;
      return text;
    }
  return NULL;
}

/* "key value" (v2's cpu.stat) or "key=value" (io.stat) summed over the
   text. */
static uint64_t
sum_key (const char *text, const char *key)
{
  uint64_t total = 0;
  size_t kl = strlen (key);

  for (const char *p = text; (p = strstr (p, key)) != NULL; p += kl)
    if ((p == text || p[-1] == ' ' || p[-1] == '\n') && (p[kl] == ' ' || p[kl] == '='))
      total += strtoull (p + kl + 1, NULL, 10);
  return total;
}

/* ---- the exposition ---- */

struct family
{
  const char *name;
  const char *type;
  const char *help;
};

enum
{
  M_CPU,
  M_MEMORY,
  M_DISK_READ,
  M_DISK_WRITTEN,
  M_NET_RX_BYTES,
  M_NET_TX_BYTES,
  M_NET_RX_PACKETS,
  M_NET_TX_PACKETS,
  M_RUNNING,
  N_INSTANCE_METRICS
};

static const struct family families[N_INSTANCE_METRICS] = {
  { "cloison_cpu_seconds_total", "counter", "CPU time used by the instance" },
  { "cloison_memory_usage_bytes", "gauge",
    "memory used (container: its cgroup's, VM: the VMM's resident set)" },
  { "cloison_disk_read_bytes_total", "counter", "bytes read from block devices" },
  { "cloison_disk_written_bytes_total", "counter", "bytes written to block devices" },
  { "cloison_network_receive_bytes_total", "counter", "bytes received, per device" },
  { "cloison_network_transmit_bytes_total", "counter", "bytes sent, per device" },
  { "cloison_network_receive_packets_total", "counter", "packets received, per device" },
  { "cloison_network_transmit_packets_total", "counter", "packets sent, per device" },
  { "cloison_instance_running", "gauge", "1 for each instance that runs, 0 otherwise" },
};

/* One sample line per family, gathered per instance then printed by
   family (the format wants a family's samples together). */
struct samples
{
  FILE *f[N_INSTANCE_METRICS];
  char *buf[N_INSTANCE_METRICS];
  size_t len[N_INSTANCE_METRICS];
};

static void
sample (struct samples *s, int metric, const char *name, const char *type, const char *device,
        double value)
{
  FILE *f = s->f[metric];
  fprintf (f, "%s{name=\"%s\",type=\"%s\"", families[metric].name, name, type);
  if (device)
    fprintf (f, ",device=\"%s\"", device);
  fprintf (f, "} %.17g\n", value);
}

/* /proc/PID/net/dev-style text: per device (but lo), rx then tx;
   reversed: a tap seen from its guest. */
static void
net_samples (struct samples *s, const char *name, const char *type, const char *dev,
             uint64_t rx_bytes, uint64_t rx_packets, uint64_t tx_bytes, uint64_t tx_packets)
{
  sample (s, M_NET_RX_BYTES, name, type, dev, (double)rx_bytes);
  sample (s, M_NET_TX_BYTES, name, type, dev, (double)tx_bytes);
  sample (s, M_NET_RX_PACKETS, name, type, dev, (double)rx_packets);
  sample (s, M_NET_TX_PACKETS, name, type, dev, (double)tx_packets);
}

static void
container_metrics (struct samples *s, const char *name, int pid, const char *mountinfo)
{
  char path[64];
  cleanup_free char *cpu = NULL, *mem = NULL, *io = NULL, *net = NULL;
  bool v2 = false;
  char *save = NULL;

  cpu = cgroup_read (pid, mountinfo, "cpuacct", "cpuacct.usage", "cpu.stat", &v2);
  if (cpu)
    sample (s, M_CPU, name, "container", NULL,
            v2 ? sum_key (cpu, "usage_usec") / 1e6 : strtoull (cpu, NULL, 10) / 1e9);
  mem = cgroup_read (pid, mountinfo, "memory", "memory.usage_in_bytes", "memory.current", &v2);
  if (mem)
    sample (s, M_MEMORY, name, "container", NULL, (double)strtoull (mem, NULL, 10));
  io = cgroup_read (pid, mountinfo, "blkio", "blkio.throttle.io_service_bytes", "io.stat", &v2);
  if (io)
    {
      /* v1: "MAJ:MIN Read N" lines (and a "Total N"); v2: "rbytes=N" */
      sample (s, M_DISK_READ, name, "container", NULL,
              (double)sum_key (io, v2 ? "rbytes" : "Read"));
      sample (s, M_DISK_WRITTEN, name, "container", NULL,
              (double)sum_key (io, v2 ? "wbytes" : "Write"));
    }
  snprintf (path, sizeof path, "/proc/%d/net/dev", pid);
  net = read_text (path);
  for (char *line = net ? strtok_r (net, "\n", &save) : NULL; line;
       line = strtok_r (NULL, "\n", &save))
    {
      char dev[64];
      unsigned long long v[16];
      char *colon = strchr (line, ':');
      if (colon == NULL || colon - line >= (long)sizeof dev)
        continue;
      if (sscanf (line, " %63[^:]: %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", dev, &v[0],
                  &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9])
              != 11
          || strcmp (dev, "lo") == 0)
        continue;
      net_samples (s, name, "container", dev, v[0], v[1], v[8], v[9]);
    }
}

static uint64_t
sys_counter (const char *dev, const char *file)
{
  cleanup_free char *path = cl_strdup_printf ("/sys/class/net/%s/statistics/%s", dev, file);
  cleanup_free char *text = read_text (path);
  return text ? strtoull (text, NULL, 10) : 0;
}

/* The instance's interfaces (its network info: ifname in the guest,
   host_ifname the tap on the host). */
static void
vm_net_metrics (struct samples *s, const char *name, json_t *interfaces)
{
  json_t *v;
  size_t i;

  json_array_foreach (interfaces, i, v)
  {
    const char *host = json_string_value (json_object_get (v, "host_ifname"));
    const char *guest = json_string_value (json_object_get (v, "ifname"));
    cleanup_free char *p = NULL;

    if (host == NULL || *host == '\0' || strchr (host, '/') || strstr (host, ".."))
      continue;
    p = cl_strdup_printf ("/sys/class/net/%s", host);
    if (access (p, F_OK) == 0)
      /* the tap's transmit is the guest's receive */
      net_samples (s, name, "vm", guest && *guest ? guest : host, sys_counter (host, "tx_bytes"),
                   sys_counter (host, "tx_packets"), sys_counter (host, "rx_bytes"),
                   sys_counter (host, "rx_packets"));
  }
}

static void
vm_metrics (struct samples *s, const char *name, int pid, json_t *network)
{
  char path[64];
  cleanup_free char *stat = NULL, *status = NULL, *io = NULL;
  long tick = sysconf (_SC_CLK_TCK);

  snprintf (path, sizeof path, "/proc/%d/stat", pid);
  stat = read_text (path);
  if (stat && strrchr (stat, ')'))
    {
      unsigned long long utime = 0, stime = 0;
      /* after "(comm)": state and 10 fields, then utime, stime */
      if (sscanf (strrchr (stat, ')') + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                  &utime, &stime)
          == 2)
        sample (s, M_CPU, name, "vm", NULL,
                (double)(utime + stime) / (double)(tick > 0 ? tick : 100));
    }
  snprintf (path, sizeof path, "/proc/%d/status", pid);
  status = read_text (path);
  if (status && strstr (status, "VmRSS:"))
    sample (s, M_MEMORY, name, "vm", NULL,
            (double)strtoull (strstr (status, "VmRSS:") + 6, NULL, 10) * 1024);
  snprintf (path, sizeof path, "/proc/%d/io", pid);
  io = read_text (path);
  if (io)
    {
      /* the guest's disks are files the VMM reads and writes */
      sample (s, M_DISK_READ, name, "vm", NULL, (double)sum_key (io, "read_bytes:"));
      sample (s, M_DISK_WRITTEN, name, "vm", NULL, (double)sum_key (io, "write_bytes:"));
    }
  vm_net_metrics (s, name, network);
}

static void
server_metrics (FILE *f, struct cl_api_ctx *ctx)
{
  cleanup_free char *status = read_text ("/proc/self/status");
  struct timespec now;
  int counts[OP_STATUS_COUNT] = { 0 };
  DIR *d;
  long fds = 0;

  fprintf (f, "# HELP cloison_api_requests_total API requests answered, by HTTP status\n"
              "# TYPE cloison_api_requests_total counter\n");
  for (int code = 100; code < 600; code++)
    {
      uint64_t n = __atomic_load_n (&ctx->requests[code], __ATOMIC_RELAXED);
      if (n)
        fprintf (f, "cloison_api_requests_total{code=\"%d\"} %llu\n", code, (unsigned long long)n);
    }
  cl_api_ops_count (ctx, counts);
  fprintf (f, "# HELP cloison_api_operations operations the server knows, by status\n"
              "# TYPE cloison_api_operations gauge\n");
  for (int i = 0; i < OP_STATUS_COUNT; i++)
    fprintf (f, "cloison_api_operations{status=\"%s\"} %d\n", cl_api_op_status_name (i), counts[i]);
  fprintf (f,
           "# HELP cloison_api_operations_started_total operations started by this server\n"
           "# TYPE cloison_api_operations_started_total counter\n"
           "cloison_api_operations_started_total %llu\n",
           (unsigned long long)__atomic_load_n (&ctx->ops_started, __ATOMIC_RELAXED));
  fprintf (f,
           "# HELP cloison_daemon_threads threads of the server process\n"
           "# TYPE cloison_daemon_threads gauge\n"
           "cloison_daemon_threads %llu\n",
           status && strstr (status, "Threads:")
               ? strtoull (strstr (status, "Threads:") + 8, NULL, 10)
               : 0ull);
  d = opendir ("/proc/self/fd");
  if (d)
    {
      while (readdir (d))
        fds++;
      closedir (d);
      fprintf (f,
               "# HELP cloison_daemon_open_fds open file descriptors of the server process\n"
               "# TYPE cloison_daemon_open_fds gauge\n"
               "cloison_daemon_open_fds %ld\n",
               fds - 3); /* ".", ".." and the directory's own */
    }
  clock_gettime (CLOCK_MONOTONIC, &now);
  fprintf (f,
           "# HELP cloison_daemon_uptime_seconds seconds since the server started\n"
           "# TYPE cloison_daemon_uptime_seconds gauge\n"
           "cloison_daemon_uptime_seconds %.3f\n",
           (double)(now.tv_sec - ctx->started.tv_sec)
               + (double)(now.tv_nsec - ctx->started.tv_nsec) / 1e9);
}

void
cl_api_metrics_get (struct api_call *c)
{
  cleanup_free char *mountinfo = read_text ("/proc/self/mountinfo");
  cleanup_json json_t *list = NULL;
  struct cl_manager *m;
  cl_error_t err = NULL;
  struct samples s = { 0 };
  char *out = NULL;
  size_t out_len = 0;
  FILE *f;
  json_t *inst;
  size_t i;
  int r;

  if (cl_api_manager_get (c->ctx, &m, &err) < 0)
    {
      cl_api_reply_cl_error (c, &err);
      return;
    }
  r = cl_mgr_instance_list (m, &list, &err);
  cl_api_manager_put (c->ctx, m);
  if (r < 0)
    {
      cl_api_reply_cl_error (c, &err);
      return;
    }
  for (int k = 0; k < N_INSTANCE_METRICS; k++)
    s.f[k] = open_memstream (&s.buf[k], &s.len[k]);
  json_array_foreach (list, i, inst)
  {
    const char *name = json_string_value (json_object_get (inst, "name"));
    const char *kind = json_string_value (json_object_get (inst, "kind"));
    const char *status = json_string_value (json_object_get (inst, "status"));
    json_t *pid = json_object_get (inst, "pid");
    /* a frozen instance still holds its memory and counters */
    bool running = status && (strcmp (status, "running") == 0 || strcmp (status, "frozen") == 0)
                   && json_is_integer (pid);

    if (name == NULL || kind == NULL)
      continue;
    sample (&s, M_RUNNING, name, kind, NULL, running ? 1 : 0);
    if (!running)
      continue;
    if (strcmp (kind, "vm") == 0)
      {
        cleanup_json json_t *info = NULL;
        cl_error_t e = NULL;
        /* the taps: in the detailed info */
        if (cl_api_manager_get (c->ctx, &m, &e) == 0)
          {
            if (cl_mgr_instance_info (m, name, &info, &e) < 0)
              cl_error_release (&e);
            cl_api_manager_put (c->ctx, m);
          }
        else
          cl_error_release (&e);
        vm_metrics (&s, name, (int)json_integer_value (pid), json_object_get (info, "network"));
      }
    else
      container_metrics (&s, name, (int)json_integer_value (pid), mountinfo ? mountinfo : "");
  }
  f = open_memstream (&out, &out_len);
  for (int k = 0; k < N_INSTANCE_METRICS; k++)
    {
      fclose (s.f[k]);
      fprintf (f, "# HELP %s %s\n# TYPE %s %s\n%s", families[k].name, families[k].help,
               families[k].name, families[k].type, s.buf[k] ? s.buf[k] : "");
      free (s.buf[k]);
    }
  server_metrics (f, c->ctx);
  fclose (f);
  cl_api_response_clear (c->resp);
  c->resp->status = 200;
  c->resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
  c->resp->raw = out;
  c->resp->raw_len = out_len;
}
