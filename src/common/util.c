/* SPDX-License-Identifier: Apache-2.0 */
#include "common/util.h"
#include "common/cleanup.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

char *
cl_strdup_printf (const char *fmt, ...)
{
  va_list ap;
  char *s;
  int n;

  va_start (ap, fmt);
  n = vasprintf (&s, fmt, ap);
  va_end (ap);
  if (n < 0)
    abort ();
  return s;
}

void *
cl_xmalloc0 (size_t size)
{
  void *p = calloc (1, size ? size : 1);
  if (p == NULL)
    abort ();
  return p;
}

char *
cl_xstrdup (const char *s)
{
  if (s == NULL)
    return NULL;
  size_t n = strlen (s) + 1;
  char *p = cl_xmalloc0 (n);
  memcpy (p, s, n);
  return p;
}

int
cl_read_all (int fd, void *data, size_t len)
{
  char *p = data;
  while (len > 0)
    {
      ssize_t r = read (fd, p, len);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        return -1;
      if (r == 0)
        {
          errno = EIO;
          return -1;
        }
      p += r;
      len -= r;
    }
  return 0;
}

int
cl_write_all (int fd, const void *data, size_t len)
{
  const char *p = data;
  while (len > 0)
    {
      ssize_t r = write (fd, p, len);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        return -1;
      p += r;
      len -= r;
    }
  return 0;
}

int
cl_read_file_at (int dirfd, const char *path, char **out, size_t *len, cl_error_t *err)
{
  cleanup_close int fd = openat (dirfd, path, O_RDONLY | O_CLOEXEC);
  cleanup_free char *buf = NULL;
  size_t size = 0, alloc = 0;

  if (fd < 0)
    return cl_error_errno (err, "open `%s`", path);
  for (;;)
    {
      ssize_t r;
      if (alloc - size < 4096)
        {
          alloc = alloc ? alloc * 2 : 8192;
          char *n = realloc (buf, alloc);
          if (n == NULL)
            return cl_error_make (err, ENOMEM, "read `%s`", path);
          buf = n;
        }
      r = read (fd, buf + size, alloc - size - 1);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        return cl_error_errno (err, "read `%s`", path);
      if (r == 0)
        break;
      size += r;
    }
  buf[size] = '\0';
  if (len)
    *len = size;
  *out = steal_pointer (&buf);
  return 0;
}

int
cl_read_file (const char *path, char **out, size_t *len, cl_error_t *err)
{
  return cl_read_file_at (AT_FDCWD, path, out, len, err);
}

int
cl_write_file_at (int dirfd, const char *path, const void *data, size_t len, cl_error_t *err)
{
  cleanup_close int fd = openat (dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return cl_error_errno (err, "open `%s`", path);
  if (cl_write_all (fd, data, len) < 0)
    return cl_error_errno (err, "write `%s`", path);
  return 0;
}

int
cl_write_file (const char *path, const void *data, size_t len, int atomic, cl_error_t *err)
{
  cleanup_free char *tmp = NULL;
  if (!atomic)
    return cl_write_file_at (AT_FDCWD, path, data, len, err);
  tmp = cl_strdup_printf ("%s.tmp.%d", path, getpid ());
  if (cl_write_file_at (AT_FDCWD, tmp, data, len, err) < 0)
    return -1;
  if (rename (tmp, path) < 0)
    {
      int saved = errno;
      unlink (tmp);
      return cl_error_make (err, saved, "rename `%s`", path);
    }
  return 0;
}

int
cl_mkdir_p (const char *path, mode_t mode, cl_error_t *err)
{
  cleanup_free char *copy = cl_xstrdup (path);
  char *p;

  if (copy == NULL)
    return cl_error_make (err, ENOMEM, "mkdir `%s`", path);
  for (p = copy + 1; *p; p++)
    {
      if (*p != '/')
        continue;
      *p = '\0';
      if (mkdir (copy, mode) < 0 && errno != EEXIST)
        return cl_error_errno (err, "mkdir `%s`", copy);
      *p = '/';
    }
  if (mkdir (copy, mode) < 0 && errno != EEXIST)
    return cl_error_errno (err, "mkdir `%s`", copy);
  return 0;
}

static int
rm_rf_at (int parentfd, const char *name, dev_t dev, cl_error_t *err)
{
  struct stat st;
  cleanup_dir DIR *dir = NULL;
  struct dirent *de;
  int fd;

  if (fstatat (parentfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : cl_error_errno (err, "stat `%s`", name);
  if (!S_ISDIR (st.st_mode))
    {
      if (unlinkat (parentfd, name, 0) < 0 && errno != ENOENT)
        return cl_error_errno (err, "unlink `%s`", name);
      return 0;
    }
  if (st.st_dev != dev)
    return cl_error_make (err, EXDEV, "remove `%s`: a mount point is still there", name);
  fd = openat (parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return cl_error_errno (err, "open `%s`", name);
  dir = fdopendir (fd);
  if (dir == NULL)
    {
      close (fd);
      return cl_error_errno (err, "opendir `%s`", name);
    }
  while ((de = readdir (dir)))
    {
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      if (rm_rf_at (dirfd (dir), de->d_name, dev, err) < 0)
        return cl_error_wrap (err, "remove `%s`", name);
    }
  if (unlinkat (parentfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
    return cl_error_errno (err, "rmdir `%s`", name);
  return 0;
}

int
cl_rm_rf (const char *path, cl_error_t *err)
{
  struct stat st;
  if (lstat (path, &st) < 0)
    return errno == ENOENT ? 0 : cl_error_errno (err, "stat `%s`", path);
  return rm_rf_at (AT_FDCWD, path, st.st_dev, err);
}

int
cl_validate_name (const char *name, const char *what, cl_error_t *err)
{
  size_t len = name ? strlen (name) : 0;

  if (len == 0)
    return cl_error_raise (err, CL_ERR_INVALID, "invalid %s: empty", what);
  if (len > 128)
    return cl_error_raise (err, CL_ERR_INVALID, "invalid %s `%.32s...`: longer than 128 characters",
                           what, name);
  if (name[0] == '.' || name[0] == '-')
    return cl_error_raise (err, CL_ERR_INVALID, "invalid %s `%s`: must not start with `%c`", what,
                           name, name[0]);
  for (const char *p = name; *p; p++)
    if (!isalnum ((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
      return cl_error_raise (err, CL_ERR_INVALID, "invalid %s `%s`: character `%c` not allowed",
                             what, name, *p);
  return 0;
}

int
cl_parse_size (const char *s, const char *what, uint64_t *out, cl_error_t *err)
{
  char *end;
  unsigned long long v;
  unsigned shift = 0;

  if (s == NULL || !isdigit ((unsigned char)*s))
    return cl_error_raise (err, CL_ERR_INVALID, "invalid %s `%s`: expected a size like 512M", what,
                           s ? s : "");
  errno = 0;
  v = strtoull (s, &end, 10);
  if (errno)
    return cl_error_raise (err, CL_ERR_INVALID, "invalid %s `%s`: out of range", what, s);
  switch (*end)
    {
    case '\0':
      break;
    case 'k':
    case 'K':
      shift = 10;
      end++;
      break;
    case 'm':
    case 'M':
      shift = 20;
      end++;
      break;
    case 'g':
    case 'G':
      shift = 30;
      end++;
      break;
    case 't':
    case 'T':
      shift = 40;
      end++;
      break;
    case 'b':
    case 'B':
      break;
    default:
      return cl_error_raise (err, CL_ERR_INVALID, "invalid %s `%s`: unknown unit `%s`", what, s,
                             end);
    }
  if (shift && (strcmp (end, "iB") == 0 || strcmp (end, "B") == 0 || strcmp (end, "ib") == 0))
    end += strlen (end);
  else if (strcmp (end, "B") == 0 || strcmp (end, "b") == 0)
    end++;
  if (*end)
    return cl_error_raise (err, CL_ERR_INVALID, "invalid %s `%s`: unknown unit", what, s);
  if (shift && v > (UINT64_MAX >> shift))
    return cl_error_raise (err, CL_ERR_INVALID, "invalid %s `%s`: out of range", what, s);
  *out = (uint64_t)v << shift;
  return 0;
}

void
cl_close_fds_from (int from)
{
  if (syscall (SYS_close_range, from, ~0U, 0) == 0)
    return;
  for (int fd = from; fd < 65536; fd++)
    close (fd);
}

uint64_t
cl_fnv1a64 (const char *s)
{
  uint64_t h = 14695981039346656037ull;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    h = (h ^ *p) * 1099511628211ull;
  return h;
}

void
cl_close_fds_except (const int *keep, size_t n)
{
  int lo = 3;

  /* keep sorted ascending; close every gap between the kept ones */
  for (size_t i = 0; i < n; i++)
    {
      if (keep[i] < lo)
        continue;
      for (int fd = lo; fd < keep[i]; fd++)
        close (fd);
      lo = keep[i] + 1;
    }
  cl_close_fds_from (lo);
}

void
cl_cloexec_fds_from (int from)
{
  if (syscall (SYS_close_range, from, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
    return;
  for (int fd = from; fd < 65536; fd++)
    {
      int flags = fcntl (fd, F_GETFD);
      if (flags >= 0)
        fcntl (fd, F_SETFD, flags | FD_CLOEXEC);
    }
}

uint64_t
cl_now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

uint64_t
cl_proc_start_time (pid_t pid)
{
  char path[64], buf[1024], *p;
  unsigned long long start = 0;
  ssize_t n;
  int fd, field;

  if (pid <= 0)
    return 0;
  snprintf (path, sizeof path, "/proc/%d/stat", (int)pid);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  n = read (fd, buf, sizeof buf - 1);
  close (fd);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  /* comm may hold spaces and parentheses: fields resume after the last ')'.
     Field 3 is the state, field 22 the start time. */
  p = strrchr (buf, ')');
  if (p == NULL)
    return 0;
  if (p[2] == 'Z' || p[2] == 'X')
    return 0; /* a zombie has finished running */
  for (field = 2; field < 22 && p; field++)
    p = strchr (p + 1, ' ');
  if (p == NULL || sscanf (p + 1, "%llu", &start) != 1)
    return 0;
  return start;
}

void
cl_strv_free (char **v)
{
  for (char **p = v; p && *p; p++)
    free (*p);
  free (v);
}

void
cl_strv_free_n (char **v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free (v[i]);
  free (v);
}

void
cl_buffer_append (struct cl_buffer *b, const void *p, size_t n)
{
  b->data = realloc (b->data, b->len + n + 1);
  if (b->data == NULL)
    abort ();
  memcpy (b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}

char *
cl_http_header_value (const char *line, size_t len, const char *name)
{
  size_t nl = strlen (name);
  if (len <= nl || strncasecmp (line, name, nl) != 0 || line[nl] != ':')
    return NULL;
  line += nl + 1;
  len -= nl + 1;
  while (len && (*line == ' ' || *line == '\t'))
    line++, len--;
  while (len && (line[len - 1] == '\r' || line[len - 1] == '\n' || line[len - 1] == ' '))
    len--;
  return cl_strdup_printf ("%.*s", (int)len, line);
}

#ifdef CLOISON_FAULT_INJECTION
void
cl_crash_point (const char *var, const char *step)
{
  const char *at = getenv (var);
  if (at && strcmp (at, step) == 0)
    raise (SIGKILL);
}
#endif
int
cl_unix_http_request (const char *socket_path, const char *method, const char *path,
                      const char *body, cl_error_t *err)
{
  return cl_unix_http_request_body (socket_path, method, path, body, NULL, err);
}

int
cl_unix_http_request_body (const char *socket_path, const char *method, const char *path,
                           const char *body, char **out, cl_error_t *err)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  cleanup_close int fd = -1;
  char req[2048];
  cleanup_free char *resp = cl_xmalloc0 (65536);
  size_t got = 0;
  ssize_t n;
  int status = 0;

  if (strlen (socket_path) >= sizeof sa.sun_path)
    return cl_error_raise (err, CL_ERR_INVALID, "API socket path `%s` too long", socket_path);
  strcpy (sa.sun_path, socket_path);
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect (fd, (struct sockaddr *)&sa, sizeof sa) < 0)
    return cl_error_errno (err, "connect to the API `%s`", socket_path);
  n = snprintf (req, sizeof req,
                "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                method, path, body ? strlen (body) : 0, body ? body : "");
  if (cl_write_all (fd, req, (size_t)n) < 0)
    return cl_error_errno (err, "write to the API");
  /* the whole answer when it is wanted (Connection: close), else its
     first read (the status line) */
  while (got < 65535 && (n = read (fd, resp + got, 65535 - got)) != 0)
    {
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        break;
      got += (size_t)n;
      if (out == NULL)
        break;
    }
  if (got == 0)
    return cl_error_make (err, 0, "API %s %s: no answer", method, path);
  resp[got] = '\0';
  char *bodyp = strstr (resp, "\r\n\r\n");
  if (sscanf (resp, "HTTP/1.%*d %d", &status) != 1 || status / 100 != 2)
    return cl_error_make (err, 0, "API %s %s: %s", method, path, bodyp ? bodyp + 4 : resp);
  if (out)
    *out = cl_xstrdup (bodyp ? bodyp + 4 : "");
  return 0;
}

unsigned
cl_iov_slice (const struct iovec *src, unsigned n, size_t skip, size_t keep, struct iovec *dst,
              unsigned max, size_t *len)
{
  unsigned k = 0;

  *len = 0;
  for (unsigned i = 0; i < n && keep > 0 && k < max; i++)
    {
      size_t seg = src[i].iov_len;
      if (skip >= seg)
        {
          skip -= seg;
          continue;
        }
      seg -= skip;
      if (seg > keep)
        seg = keep;
      dst[k].iov_base = (uint8_t *)src[i].iov_base + skip;
      dst[k].iov_len = seg;
      k++;
      keep -= seg;
      *len += seg;
      skip = 0;
    }
  return k;
}
