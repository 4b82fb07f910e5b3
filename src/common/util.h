/* SPDX-License-Identifier: Apache-2.0 */
/* File, string and process helpers shared by every part of cloison. */
#ifndef CLOISON_UTIL_H
#define CLOISON_UTIL_H

#include "common/error.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* asprintf that aborts on ENOMEM. */
char *cl_strdup_printf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
void *cl_xmalloc0 (size_t size);
/* strdup that aborts on ENOMEM (as cl_xmalloc0); NULL gives NULL. */
char *cl_xstrdup (const char *s);

/* Whole-file read; *out is NUL-terminated, *len (optional) excludes it. */
int cl_read_file (const char *path, char **out, size_t *len, cl_error_t *err);
int cl_read_file_at (int dirfd, const char *path, char **out, size_t *len, cl_error_t *err);
/* Atomic when `atomic`: written to a temporary file then renamed. */
int cl_write_file (const char *path, const void *data, size_t len, int atomic, cl_error_t *err);
int cl_write_file_at (int dirfd, const char *path, const void *data, size_t len, cl_error_t *err);
int cl_write_all (int fd, const void *data, size_t len);
int cl_read_all (int fd, void *data, size_t len); /* 0, or -1 with errno (EIO on short read) */
int cl_mkdir_p (const char *path, mode_t mode, cl_error_t *err);
/* rm -rf that stays on one filesystem and never follows links. */
int cl_rm_rf (const char *path, cl_error_t *err);

/* Names of containers, instances, images, networks: 1-128 characters of
   [A-Za-z0-9_.-], not starting with '.' or '-'.  `what` names the thing in
   the error ("container id"). */
/* A growing byte buffer, kept NUL-terminated (len excludes the NUL):
   what libcurl's write callbacks fill. */
struct cl_buffer
{
  char *data;
  size_t len;
};
/* Appends n bytes (aborts on ENOMEM). */
void cl_buffer_append (struct cl_buffer *b, const void *p, size_t n);

/* The value of an HTTP header line `name: value` (name without regard
   to case), trimmed; NULL when the line is another header's (caller
   frees). */
char *cl_http_header_value (const char *line, size_t len, const char *name);
int cl_validate_name (const char *name, const char *what, cl_error_t *err);

/* "512", "512K", "256M", "2G", "1T" (binary units, optional "iB"/"B").
   Errors name `what` and the input. */
int cl_parse_size (const char *s, const char *what, uint64_t *out, cl_error_t *err);

/* Frees a NULL-terminated string vector (NULL allowed). */
void cl_strv_free (char **v);
/* Frees the first n strings of v, then v. */
void cl_strv_free_n (char **v, size_t n);

/* Close every fd >= from. */
void cl_close_fds_from (int from);
/* Closes every fd from 3 up but those in keep (sorted ascending). */
/* FNV-1a, 64 bits, of a string: short stable names (cache files, ETags,
   lock offsets), not for security. */
uint64_t cl_fnv1a64 (const char *s);
void cl_close_fds_except (const int *keep, size_t n);
/* Mark every fd >= from close-on-exec. */
void cl_cloexec_fds_from (int from);

/* Monotonic clock in nanoseconds. */
uint64_t cl_now_ns (void);

/* Start time of a running process (/proc/PID/stat field 22, in clock
   ticks since boot), or 0 when it does not exist or is a zombie.  A pid
   paired with its start time names one process even if the pid is reused. */
uint64_t cl_proc_start_time (pid_t pid);

#ifdef CLOISON_FAULT_INJECTION
/* Fault injection (the test build only): SIGKILLs the process when the
   environment variable `var` names `step`. */
void cl_crash_point (const char *var, const char *step);
#endif
/* One HTTP/1.1 request over a Unix socket (a VMM's API): body (JSON) may
   be NULL; a status other than 2xx is an error carrying the answer's
   body. */
int cl_unix_http_request (const char *socket_path, const char *method, const char *path,
                          const char *body, cl_error_t *err);
/* The same, with the answer's body in *out (caller frees; up to 64 KiB). */
int cl_unix_http_request_body (const char *socket_path, const char *method, const char *path,
                               const char *body, char **out, cl_error_t *err);

/* The bytes of `src` (`n` buffers) from byte `skip` on, at most `keep` of
   them, as buffers into `dst` (room for `max`): returns how many; *len
   gets the bytes they hold (less than `keep` when `src` or `max` ends
   first). */
unsigned cl_iov_slice (const struct iovec *src, unsigned n, size_t skip, size_t keep,
                       struct iovec *dst, unsigned max, size_t *len);

#endif
