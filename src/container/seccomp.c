/* SPDX-License-Identifier: Apache-2.0 */
/* linux.seccomp through libseccomp.  The same walk over the JSON serves
   validation (ctx == NULL: nothing is built) and loading, so that what
   `create` accepts is exactly what the container's init can load. */
#include "container/seccomp.h"
#include "container/seccomp_internal.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/filter.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>

#define SECCOMP_CTX "linux.seccomp"

static const struct
{
  const char *name;
  uint32_t action;
  bool takes_errno; /* errnoRet applies (ERRNO, TRACE) */
} seccomp_actions[] = {
  { "SCMP_ACT_KILL", SCMP_ACT_KILL, false },
  { "SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD, false },
  { "SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS, false },
  { "SCMP_ACT_TRAP", SCMP_ACT_TRAP, false },
  { "SCMP_ACT_ERRNO", SCMP_ACT_ERRNO (0), true },
  { "SCMP_ACT_TRACE", SCMP_ACT_TRACE (0), true },
  { "SCMP_ACT_ALLOW", SCMP_ACT_ALLOW, false },
  { "SCMP_ACT_LOG", SCMP_ACT_LOG, false },
  { "SCMP_ACT_NOTIFY", SCMP_ACT_NOTIFY, false },
};

static const struct
{
  const char *name;
  enum scmp_compare op;
} seccomp_ops[] = {
  { "SCMP_CMP_NE", SCMP_CMP_NE }, { "SCMP_CMP_LT", SCMP_CMP_LT },
  { "SCMP_CMP_LE", SCMP_CMP_LE }, { "SCMP_CMP_EQ", SCMP_CMP_EQ },
  { "SCMP_CMP_GE", SCMP_CMP_GE }, { "SCMP_CMP_GT", SCMP_CMP_GT },
  { "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ },
};

/* Filter flags of the spec and the kernel's seccomp(2) flag for each: the
   filter is loaded with seccomp(2) directly (see cl_ctr_seccomp_load_program). */
static const struct
{
  const char *name;
  unsigned int flag;
} seccomp_flags[] = {
  { "SECCOMP_FILTER_FLAG_TSYNC", SECCOMP_FILTER_FLAG_TSYNC },
  { "SECCOMP_FILTER_FLAG_LOG", SECCOMP_FILTER_FLAG_LOG },
  { "SECCOMP_FILTER_FLAG_SPEC_ALLOW", SECCOMP_FILTER_FLAG_SPEC_ALLOW },
  { "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", 1U << 5 },
};

#define N_ELEMENTS(a) (sizeof (a) / sizeof ((a)[0]))

struct seccomp_walk
{
  scmp_filter_ctx ctx; /* NULL when only validating */
  uint32_t default_action;
  unsigned int kernel_flags; /* SECCOMP_FILTER_FLAG_* */
  bool uses_notify;
};

/* Reads `action` (+ errnoRet) of obj at ctx into *out. */
static int
read_action (json_t *obj, const char *ctx, const char *action_key, const char *errno_key,
             uint32_t *out, bool *is_notify, cl_error_t *err)
{
  const char *name = NULL;
  uint64_t errno_ret = EPERM;
  int r = cl_json_string (obj, ctx, action_key, &name, err);
  if (r < 0)
    return -1;
  if (r == 0)
    return cl_error_make (err, 0, "%s.%s: missing", ctx, action_key);
  if (cl_json_uint64 (obj, ctx, errno_key, &errno_ret, err) < 0)
    return -1;
  for (size_t i = 0; i < N_ELEMENTS (seccomp_actions); i++)
    if (strcmp (seccomp_actions[i].name, name) == 0)
      {
        if (seccomp_actions[i].takes_errno && errno_ret > 0xffff)
          return cl_error_make (err, 0, "%s.%s: %llu is out of range (0-65535)", ctx, errno_key,
                                (unsigned long long) errno_ret);
        *out = seccomp_actions[i].action;
        if (seccomp_actions[i].takes_errno)
          *out |= (uint32_t) errno_ret;
        *is_notify = seccomp_actions[i].action == SCMP_ACT_NOTIFY;
        return 0;
      }
  return cl_error_make (err, 0, "%s.%s: unknown action `%s`", ctx, action_key, name);
}

/* "SCMP_ARCH_X86_64" -> libseccomp's token, 0 when unknown. */
static uint32_t
arch_resolve (const char *name)
{
  char lower[32];
  size_t i;
  if (strncmp (name, "SCMP_ARCH_", 10) != 0 || strlen (name + 10) >= sizeof lower)
    return 0;
  for (i = 0; name[10 + i]; i++)
    lower[i] = tolower ((unsigned char) name[10 + i]);
  lower[i] = '\0';
  return seccomp_arch_resolve_name (lower);
}

static int
walk_header (json_t *sc, struct seccomp_walk *w, cl_error_t *err)
{
  const char **names = NULL;
  size_t n = 0;
  bool notify = false;
  int r;

  if (!json_is_object (sc))
    return cl_error_make (err, 0, SECCOMP_CTX ": expected an object");
  if (read_action (sc, SECCOMP_CTX, "defaultAction", "defaultErrnoRet", &w->default_action,
                   &notify, err)
      < 0)
    return -1;
  if (notify)
    return cl_error_make (err, 0,
                          SECCOMP_CTX ".defaultAction: SCMP_ACT_NOTIFY cannot be the default "
                                      "action (the runtime itself would block)");
  if (w->ctx)
    {
      /* The runtime sets no_new_privs itself, as process.noNewPrivileges
         says; libseccomp must not force it. */
      if (seccomp_attr_set (w->ctx, SCMP_FLTATR_CTL_NNP, 0) < 0)
        return cl_error_make (err, 0, SECCOMP_CTX ": cannot clear the no_new_privs attribute");
    }

  r = cl_json_string_array (sc, SECCOMP_CTX, "architectures", &names, &n, err);
  if (r < 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    {
      uint32_t arch = arch_resolve (names[i]);
      if (arch == 0)
        {
          cl_error_make (err, 0, SECCOMP_CTX ".architectures[%zu]: unknown architecture `%s`", i,
                         names[i]);
          free (names);
          return -1;
        }
      if (w->ctx)
        {
          int rc = seccomp_arch_add (w->ctx, arch);
          if (rc < 0 && rc != -EEXIST)
            {
              cl_error_make (err, -rc, SECCOMP_CTX ".architectures[%zu]: add `%s`", i, names[i]);
              free (names);
              return -1;
            }
        }
    }
  free (names);
  names = NULL;
  n = 0;

  r = cl_json_string_array (sc, SECCOMP_CTX, "flags", &names, &n, err);
  if (r < 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    {
      size_t f;
      for (f = 0; f < N_ELEMENTS (seccomp_flags); f++)
        if (strcmp (seccomp_flags[f].name, names[i]) == 0)
          break;
      if (f == N_ELEMENTS (seccomp_flags))
        {
          cl_error_make (err, 0, SECCOMP_CTX ".flags[%zu]: unknown flag `%s`", i, names[i]);
          free (names);
          return -1;
        }
      w->kernel_flags |= seccomp_flags[f].flag;
    }
  free (names);
  return 0;
}

static int
read_args (json_t *args, const char *ctx, struct scmp_arg_cmp *cmps, size_t *n_cmps,
           cl_error_t *err)
{
  json_t *arg;
  size_t i;

  if (json_array_size (args) > 6)
    return cl_error_make (err, 0, "%s.args: at most 6 conditions, got %zu", ctx,
                          json_array_size (args));
  json_array_foreach (args, i, arg)
  {
    cleanup_free char *actx = cl_strdup_printf ("%s.args[%zu]", ctx, i);
    uint64_t index = 0, value = 0, value_two = 0;
    const char *op = NULL;
    size_t k;
    int r;

    if (!json_is_object (arg))
      return cl_error_make (err, 0, "%s: expected an object", actx);
    r = cl_json_uint64 (arg, actx, "index", &index, err);
    if (r < 0)
      return -1;
    if (r == 0)
      return cl_error_make (err, 0, "%s.index: missing", actx);
    if (index > 5)
      return cl_error_make (err, 0, "%s.index: %llu is out of range (0-5)", actx,
                            (unsigned long long) index);
    if (cl_json_uint64 (arg, actx, "value", &value, err) < 0
        || cl_json_uint64 (arg, actx, "valueTwo", &value_two, err) < 0)
      return -1;
    r = cl_json_string (arg, actx, "op", &op, err);
    if (r < 0)
      return -1;
    if (r == 0)
      return cl_error_make (err, 0, "%s.op: missing", actx);
    for (k = 0; k < N_ELEMENTS (seccomp_ops); k++)
      if (strcmp (seccomp_ops[k].name, op) == 0)
        break;
    if (k == N_ELEMENTS (seccomp_ops))
      return cl_error_make (err, 0, "%s.op: unknown operator `%s`", actx, op);
    cmps[i] = (struct scmp_arg_cmp){ .arg = (unsigned) index,
                                     .op = seccomp_ops[k].op,
                                     .datum_a = value,
                                     .datum_b = value_two };
  }
  *n_cmps = json_array_size (args);
  return 0;
}

/* libseccomp rejects two conditions on the same argument in one rule;
   like runc, such an entry becomes one rule per condition. */
static bool
args_repeat_an_index (const struct scmp_arg_cmp *cmps, size_t n)
{
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++)
      if (cmps[i].arg == cmps[j].arg)
        return true;
  return false;
}

/* Profiles (podman's default among them) list names of every architecture
   at once; a name is an error only when libseccomp knows it nowhere. */
static bool
syscall_known_anywhere (const char *name)
{
  static const char *const arches[] = { "x86",     "x86_64",    "x32",      "arm",
                                        "aarch64", "mips",      "mips64",   "mips64n32",
                                        "mipsel",  "mipsel64",  "mipsel64n32", "ppc",
                                        "ppc64",   "ppc64le",   "s390",     "s390x",
                                        "parisc",  "parisc64",  "riscv64" };
  for (size_t a = 0; a < N_ELEMENTS (arches); a++)
    {
      uint32_t token = seccomp_arch_resolve_name (arches[a]);
      if (token && seccomp_syscall_resolve_name_arch (token, name) != __NR_SCMP_ERROR)
        return true;
    }
  return false;
}

static int
add_rule (struct seccomp_walk *w, const char *ctx, const char *name, uint32_t action,
          const struct scmp_arg_cmp *cmps, size_t n_cmps, cl_error_t *err)
{
  int nr = seccomp_syscall_resolve_name (name);
  int rc;

  /* Unknown on this architecture (a name of another one): skipped, as runc
     does.  libseccomp translates the native number for the other
     architectures of the filter. */
  if (nr == __NR_SCMP_ERROR)
    return 0;
  if (n_cmps > 0 && args_repeat_an_index (cmps, n_cmps))
    {
      for (size_t i = 0; i < n_cmps; i++)
        if ((rc = seccomp_rule_add_array (w->ctx, action, nr, 1, &cmps[i])) < 0)
          return cl_error_make (err, -rc, "%s: add rule for `%s`", ctx, name);
      return 0;
    }
  rc = seccomp_rule_add_array (w->ctx, action, nr, n_cmps, cmps);
  if (rc < 0)
    return cl_error_make (err, -rc, "%s: add rule for `%s`", ctx, name);
  return 0;
}

static int
walk_syscalls (json_t *sc, struct seccomp_walk *w, cl_error_t *err)
{
  json_t *syscalls = NULL, *entry;
  size_t i;

  if (cl_json_array (sc, SECCOMP_CTX, "syscalls", &syscalls, err) < 0)
    return -1;
  json_array_foreach (syscalls, i, entry)
  {
    cleanup_free char *ctx = cl_strdup_printf (SECCOMP_CTX ".syscalls[%zu]", i);
    struct scmp_arg_cmp cmps[6];
    size_t n_cmps = 0, n_names = 0;
    const char **names = NULL;
    json_t *args = NULL;
    uint32_t action;
    bool notify = false;
    int r;

    if (!json_is_object (entry))
      return cl_error_make (err, 0, "%s: expected an object", ctx);
    if (read_action (entry, ctx, "action", "errnoRet", &action, &notify, err) < 0)
      return -1;
    w->uses_notify |= notify;
    if (cl_json_array (entry, ctx, "args", &args, err) < 0)
      return -1;
    if (args && read_args (args, ctx, cmps, &n_cmps, err) < 0)
      return -1;
    r = cl_json_string_array (entry, ctx, "names", &names, &n_names, err);
    if (r < 0)
      return -1;
    if (n_names == 0)
      {
        free (names);
        return cl_error_make (err, 0, "%s.names: expected at least one syscall name", ctx);
      }
    for (size_t k = 0; k < n_names; k++)
      {
        if (!syscall_known_anywhere (names[k]))
          {
            cl_error_make (err, 0, "%s.names[%zu]: unknown syscall `%s` (on every architecture)",
                           ctx, k, names[k]);
            free (names);
            return -1;
          }
        /* A rule equal to the default is redundant, and libseccomp refuses
           it. */
        if (w->ctx && action != w->default_action
            && add_rule (w, ctx, names[k], action, cmps, n_cmps, err) < 0)
          {
            free (names);
            return -1;
          }
      }
    free (names);
  }
  return 0;
}

static int
walk (json_t *sc, struct seccomp_walk *w, cl_error_t *err)
{
  const char *listener = NULL, *metadata = NULL;

  if (walk_header (sc, w, err) < 0 || walk_syscalls (sc, w, err) < 0)
    return -1;
  if (cl_json_string (sc, SECCOMP_CTX, "listenerPath", &listener, err) < 0
      || cl_json_string (sc, SECCOMP_CTX, "listenerMetadata", &metadata, err) < 0)
    return -1;
  if (w->uses_notify && (listener == NULL || *listener == '\0'))
    return cl_error_make (err, 0,
                          SECCOMP_CTX ".listenerPath: required when an action is SCMP_ACT_NOTIFY");
  if (listener && strlen (listener) >= sizeof ((struct sockaddr_un *) 0)->sun_path)
    return cl_error_make (err, 0, SECCOMP_CTX ".listenerPath: `%s` is too long for a socket path",
                          listener);
  return 0;
}

int
cl_ctr_seccomp_validate (json_t *seccomp, cl_error_t *err)
{
  struct seccomp_walk w = { 0 };
  if (seccomp == NULL || json_is_null (seccomp))
    return 0;
  return walk (seccomp, &w, err);
}

/* The filter as the kernel takes it, and how to load it. */
struct cl_seccomp_program
{
  struct sock_filter *insns;
  size_t len;
  unsigned int flags; /* SECCOMP_FILTER_FLAG_*, NEW_LISTENER included */
};

void
cl_ctr_seccomp_program_free (struct cl_seccomp_program *prog)
{
  if (prog == NULL)
    return;
  free (prog->insns);
  free (prog);
}

/* libseccomp 2.5 exports only to an fd. */
static int
export_bpf (scmp_filter_ctx ctx, struct cl_seccomp_program *prog, cl_error_t *err)
{
  cleanup_close int fd = memfd_create ("cloison-seccomp", MFD_CLOEXEC);
  struct stat st;
  int rc;

  if (fd < 0)
    return cl_error_errno (err, SECCOMP_CTX ": memfd_create");
  rc = seccomp_export_bpf (ctx, fd);
  if (rc < 0)
    return cl_error_make (err, -rc, SECCOMP_CTX ": generate the filter");
  if (fstat (fd, &st) < 0)
    return cl_error_errno (err, SECCOMP_CTX ": fstat");
  if (st.st_size <= 0 || st.st_size % sizeof (struct sock_filter) != 0
      || st.st_size / sizeof (struct sock_filter) > BPF_MAXINSNS)
    return cl_error_make (err, 0, SECCOMP_CTX ": the filter has %lld bytes, not a program of at most %d instructions",
                          (long long) st.st_size, BPF_MAXINSNS);
  prog->insns = cl_xmalloc0 ((size_t) st.st_size);
  prog->len = (size_t) st.st_size / sizeof (struct sock_filter);
  if (pread (fd, prog->insns, (size_t) st.st_size, 0) != st.st_size)
    return cl_error_errno (err, SECCOMP_CTX ": read the filter back");
  return 0;
}

static int
compile_uncached (json_t *seccomp, struct cl_seccomp_program *prog, cl_error_t *err)
{
  struct seccomp_walk w = { 0 };
  uint32_t default_action = SCMP_ACT_ALLOW;
  bool notify = false;
  int r;

  if (read_action (seccomp, SECCOMP_CTX, "defaultAction", "defaultErrnoRet", &default_action,
                   &notify, err)
      < 0)
    return -1;
  w.ctx = seccomp_init (default_action);
  if (w.ctx == NULL)
    return cl_error_make (err, 0, SECCOMP_CTX ": seccomp_init failed");
  r = walk (seccomp, &w, err);
  if (r == 0)
    r = export_bpf (w.ctx, prog, err);
  seccomp_release (w.ctx);
  if (r < 0)
    return -1;
  prog->flags = w.kernel_flags;
  if (w.uses_notify)
    {
      prog->flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
      /* TSYNC must then report failures as ESRCH: its positive return
         would be ambiguous with the listener fd. */
      if (prog->flags & SECCOMP_FILTER_FLAG_TSYNC)
        prog->flags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
    }
  else
    prog->flags &= ~(1U << 5); /* WAIT_KILLABLE_RECV means nothing without a listener */
  return 0;
}

int
cl_ctr_seccomp_compile (json_t *seccomp, const char *cache_dir, struct cl_seccomp_program **out,
                        cl_error_t *err)
{
  struct cl_seccomp_program *prog;

  *out = NULL;
  if (seccomp == NULL || json_is_null (seccomp))
    return 0;
  prog = cl_xmalloc0 (sizeof *prog);
  if (cache_dir
      && cl_ctr_seccomp_cache_get (cache_dir, seccomp, &prog->insns, &prog->len, &prog->flags) == 1)
    {
      *out = prog;
      return 0;
    }
  if (compile_uncached (seccomp, prog, err) < 0)
    {
      cl_ctr_seccomp_program_free (prog);
      return -1;
    }
  if (cache_dir)
    cl_ctr_seccomp_cache_put (cache_dir, seccomp, prog->insns, prog->len, prog->flags);
  *out = prog;
  return 0;
}

int
cl_ctr_seccomp_load_program (const struct cl_seccomp_program *prog, int *notify_fd, cl_error_t *err)
{
  struct sock_fprog fprog;
  long r;

  *notify_fd = -1;
  if (prog == NULL)
    return 0;
  fprog.len = (unsigned short) prog->len;
  fprog.filter = prog->insns;
  r = syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER, prog->flags, &fprog);
  if (r < 0)
    return cl_error_errno (err, SECCOMP_CTX ": load the filter");
  /* With TSYNC a positive return names a thread that could not sync. */
  if ((prog->flags & SECCOMP_FILTER_FLAG_TSYNC) && !(prog->flags & SECCOMP_FILTER_FLAG_NEW_LISTENER)
      && r > 0)
    return cl_error_make (err, 0, SECCOMP_CTX ": thread %ld could not take the filter (TSYNC)", r);
  if (prog->flags & SECCOMP_FILTER_FLAG_NEW_LISTENER)
    *notify_fd = (int) r;
  return 0;
}

int
cl_ctr_seccomp_load (json_t *seccomp, int *notify_fd, cl_error_t *err)
{
  struct cl_seccomp_program *prog = NULL;
  int r;

  *notify_fd = -1;
  if (cl_ctr_seccomp_compile (seccomp, NULL, &prog, err) < 0)
    return -1;
  r = cl_ctr_seccomp_load_program (prog, notify_fd, err);
  cl_ctr_seccomp_program_free (prog);
  return r;
}

int
cl_ctr_seccomp_send_listener (json_t *seccomp, int notify_fd, json_t *state, cl_error_t *err)
{
  const char *path = NULL, *metadata = "";
  cleanup_close int sock = -1;
  cleanup_free char *payload = NULL;
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  json_t *pid, *msg;
  char control[CMSG_SPACE (sizeof (int))] = { 0 };
  struct iovec iov;
  struct msghdr mh = { 0 };
  struct cmsghdr *cm;

  if (cl_json_string (seccomp, SECCOMP_CTX, "listenerPath", &path, err) < 0
      || cl_json_string (seccomp, SECCOMP_CTX, "listenerMetadata", &metadata, err) < 0)
    return -1;
  if (path == NULL || notify_fd < 0)
    return 0;
  if (strlen (path) >= sizeof addr.sun_path)
    return cl_error_make (err, 0, SECCOMP_CTX ".listenerPath: `%s` is too long", path);
  strcpy (addr.sun_path, path);

  /* The spec's ContainerProcessState. */
  pid = state ? json_object_get (state, "pid") : NULL;
  msg = json_pack ("{s:s, s:[s], s:O, s:s, s:O}", "ociVersion", OCI_SPEC_VERSION, "fds",
                   "seccompFd", "pid", pid ? pid : json_integer (0), "metadata",
                   metadata ? metadata : "", "state", state ? state : json_object ());
  if (msg == NULL)
    return cl_error_make (err, 0, SECCOMP_CTX ": cannot build the listener message");
  payload = json_dumps (msg, JSON_COMPACT);
  json_decref (msg);

  sock = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0)
    return cl_error_errno (err, "socket");
  if (connect (sock, (struct sockaddr *) &addr, sizeof addr) < 0)
    return cl_error_errno (err, SECCOMP_CTX ".listenerPath: connect `%s`", path);

  iov.iov_base = payload;
  iov.iov_len = strlen (payload);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control;
  mh.msg_controllen = sizeof control;
  cm = CMSG_FIRSTHDR (&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (cm), &notify_fd, sizeof (int));
  if (sendmsg (sock, &mh, MSG_NOSIGNAL) < 0)
    return cl_error_errno (err, SECCOMP_CTX ".listenerPath: send to `%s`", path);
  return 0;
}
