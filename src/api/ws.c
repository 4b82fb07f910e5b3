/* SPDX-License-Identifier: Apache-2.0 */
/* Websocket frames (RFC 6455) on a socket that an HTTP server upgraded:
   ours unmasked, the client's masked.  Used by cloisond for the event
   stream and by the exec and console sessions (api_exec.c). */
#include "api/api_internal.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>

int
cl_api_ws_send (int fd, int opcode, const void *data, size_t len)
{
  unsigned char h[10];
  size_t n = 0;

  h[n++] = (unsigned char)(0x80 | opcode);
  if (len < 126)
    h[n++] = (unsigned char)len;
  else if (len < 65536)
    {
      h[n++] = 126;
      h[n++] = (unsigned char)(len >> 8);
      h[n++] = (unsigned char)len;
    }
  else
    {
      h[n++] = 127;
      for (int i = 7; i >= 0; i--)
        h[n++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
  return cl_write_all (fd, h, n) < 0 || (len && cl_write_all (fd, data, len) < 0) ? -1 : 0;
}

int
cl_api_ws_recv (int fd, char **payload, size_t *len, size_t max)
{
  unsigned char h[2], ext[8], mask[4];
  uint64_t n;
  char *p;

  *payload = NULL;
  *len = 0;
  if (cl_read_all (fd, h, 2) < 0 || !(h[1] & 0x80))
    return -1; /* gone, or an unmasked frame from a client */
  n = h[1] & 0x7f;
  if (n == 126 || n == 127)
    {
      size_t k = n == 126 ? 2 : 8;
      if (cl_read_all (fd, ext, k) < 0)
        return -1;
      n = 0;
      for (size_t i = 0; i < k; i++)
        n = n << 8 | ext[i];
    }
  /* control frames carry at most 125 bytes */
  if (n > max || ((h[0] & 0x08) && n > 125) || cl_read_all (fd, mask, 4) < 0)
    return -1;
  p = malloc (n + 1);
  if (p == NULL || (n && cl_read_all (fd, p, n) < 0))
    {
      free (p);
      return -1;
    }
  for (uint64_t i = 0; i < n; i++)
    p[i] ^= (char)mask[i % 4];
  p[n] = '\0';
  *payload = p;
  *len = n;
  return h[0] & 0x0f;
}

void
cl_api_channel_free (struct cl_api_channel *ch)
{
  if (ch)
    ((struct api_channel_base *)ch)->free (ch);
}
