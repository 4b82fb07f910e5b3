/* SPDX-License-Identifier: Apache-2.0 */
/* Websocket frames (RFC 6455), both sides: the server's (unmasked, on a
   socket an HTTP server upgraded: cloisond's event stream, the exec and
   console sessions of api_exec.c) and the client's (masked: the
   client's connections of remote.c, which `cloison exec` and `console`
   use).  The header's encoding and parsing are here once for both. */
#include "api/api_internal.h"
#include "common/util.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t
cl_api_ws_header (unsigned char h[CL_API_WS_HEADER_MAX], int opcode, uint64_t len,
                  const unsigned char *mask)
{
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
        h[n++] = (unsigned char)(len >> (8 * i));
    }
  if (mask)
    {
      h[1] |= 0x80;
      memcpy (h + n, mask, 4);
      n += 4;
    }
  return n;
}

size_t
cl_api_ws_header_size (const unsigned char h[2])
{
  size_t n = 2 + ((h[1] & 0x80) ? 4 : 0);
  if ((h[1] & 0x7f) == 126)
    n += 2;
  else if ((h[1] & 0x7f) == 127)
    n += 8;
  return n;
}

int
cl_api_ws_header_parse (const unsigned char *h, size_t max, struct cl_api_ws_frame *f)
{
  size_t k = (h[1] & 0x7f) == 126 ? 2 : (h[1] & 0x7f) == 127 ? 8 : 0;

  f->opcode = h[0] & 0x0f;
  f->masked = (h[1] & 0x80) != 0;
  f->len = k ? 0 : h[1] & 0x7f;
  for (size_t i = 0; i < k; i++)
    f->len = f->len << 8 | h[2 + i];
  if (f->masked)
    memcpy (f->mask, h + 2 + k, 4);
  /* control frames carry at most 125 bytes */
  return f->len > max || ((f->opcode & 0x08) && f->len > 125) ? -1 : 0;
}

void
cl_api_ws_mask (char *p, size_t n, const unsigned char mask[4])
{
  /* 8 bytes at a time (a migration stream's frames are 256 KiB) */
  uint64_t m8, w;
  size_t i = 0;

  memcpy (&m8, mask, 4);
  memcpy ((char *)&m8 + 4, mask, 4);
  for (; i + 8 <= n; i += 8)
    {
      memcpy (&w, p + i, 8);
      w ^= m8;
      memcpy (p + i, &w, 8);
    }
  for (; i < n; i++)
    p[i] ^= (char)mask[i % 4];
}

int
cl_api_ws_accept (const char *key, char **accept)
{
  static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[20];
  char *k = cl_strdup_printf ("%s%s", key, guid);
  gnutls_datum_t in = { digest, sizeof digest }, out = { NULL, 0 };
  int r = gnutls_hash_fast (GNUTLS_DIG_SHA1, k, strlen (k), digest);

  free (k);
  if (r < 0 || gnutls_base64_encode2 (&in, &out) < 0)
    return -1;
  *accept = cl_xmalloc0 (out.size + 1);
  memcpy (*accept, out.data, out.size);
  gnutls_free (out.data);
  return 0;
}

int
cl_api_ws_send (int fd, int opcode, const void *data, size_t len)
{
  unsigned char h[CL_API_WS_HEADER_MAX];
  size_t n = cl_api_ws_header (h, opcode, len, NULL);

  return cl_write_all (fd, h, n) < 0 || (len && cl_write_all (fd, data, len) < 0) ? -1 : 0;
}

int
cl_api_ws_recv (int fd, char **payload, size_t *len, size_t max)
{
  unsigned char h[CL_API_WS_HEADER_MAX];
  struct cl_api_ws_frame f;
  char *p;

  *payload = NULL;
  *len = 0;
  if (cl_read_all (fd, h, 2) < 0 || !(h[1] & 0x80))
    return -1; /* gone, or an unmasked frame from a client */
  if (cl_read_all (fd, h + 2, cl_api_ws_header_size (h) - 2) < 0
      || cl_api_ws_header_parse (h, max, &f) < 0)
    return -1;
  p = malloc (f.len + 1);
  if (p == NULL || (f.len && cl_read_all (fd, p, f.len) < 0))
    {
      free (p);
      return -1;
    }
  cl_api_ws_mask (p, f.len, f.mask);
  p[f.len] = '\0';
  *payload = p;
  *len = f.len;
  return f.opcode;
}

void
cl_api_channel_run (struct cl_api_channel *ch, int fd)
{
  ((struct api_channel_base *)ch)->run (ch, fd);
}

void
cl_api_channel_free (struct cl_api_channel *ch)
{
  if (ch)
    ((struct api_channel_base *)ch)->free (ch);
}
