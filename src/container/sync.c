/* SPDX-License-Identifier: Apache-2.0 */
#include "container/sync.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int
cl_ctr_sync_send (int fd, int type, int value, const char *text)
{
  struct sync_msg m = { .type = type, .value = value };
  size_t len = offsetof (struct sync_msg, text);
  if (text)
    {
      snprintf (m.text, sizeof m.text, "%s", text);
      len += strlen (m.text) + 1;
    }
  return send (fd, &m, len, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

int
cl_ctr_sync_recv (int fd, int want, struct sync_msg *msg, cl_error_t *err)
{
  ssize_t n;

  memset (msg, 0, sizeof *msg);
  /* ECONNRESET: the peer closed with our message unread (an init that
     failed before GO); the kernel reports that once, before the
     messages still queued for us, such as its error: read on. */
  bool reset_seen = false;
  do
    {
      n = recv (fd, msg, sizeof *msg - 1, 0);
      if (n < 0 && errno == ECONNRESET && !reset_seen)
        {
          reset_seen = true;
          errno = EINTR;
        }
    }
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return cl_error_errno (err, "container init: read sync socket");
  if (n == 0)
    return cl_error_make (err, 0, "container init exited unexpectedly");
  if (msg->type == SYNC_ERROR)
    return cl_error_make (err, 0, "%s", msg->text);
  if (want && msg->type != want)
    return cl_error_make (err, 0, "container init: unexpected message %d (wanted %d)", msg->type,
                          want);
  return 0;
}

void
cl_ctr_sync_fail (int fd, cl_error_t *err)
{
  cl_ctr_sync_send (fd, SYNC_ERROR, err && *err ? (*err)->status : 0,
                    err && *err ? (*err)->msg : "unknown error");
  _exit (1);
}
