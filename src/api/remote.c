/* SPDX-License-Identifier: Apache-2.0 */
/* Requests to a cloisond with libcurl: HTTPS with a client certificate
   and a pinned server certificate, or a local Unix socket. */
#include "api/remote.h"
#include "api/tls.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

#include <curl/curl.h>
#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define REMOTE_TIMEOUT_DEFAULT 60

static size_t
buf_write (char *p, size_t size, size_t n, void *data)
{
  cl_buffer_append (data, p, size * n);
  return size * n;
}

/* The headers we keep: Location, ETag, Content-Type. */
struct headers
{
  char *location, *etag;
  bool json;
};

static size_t
header_write (char *p, size_t size, size_t n, void *data)
{
  struct headers *h = data;
  char *v;
  if ((v = cl_http_header_value (p, size * n, "Location")))
    free (h->location), h->location = v;
  else if ((v = cl_http_header_value (p, size * n, "ETag")))
    free (h->etag), h->etag = v;
  else if ((v = cl_http_header_value (p, size * n, "Content-Type")))
    {
      h->json = strncmp (v, "application/json", 16) == 0;
      free (v);
    }
  return size * n;
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void
global_init (void)
{
  curl_global_init (CURL_GLOBAL_DEFAULT);
}

/* A handle for one request to `remote`'s `path_query`. */
static CURL *
remote_handle (const struct cl_api_remote *remote, const char *path_query, char **pin,
               cl_error_t *err)
{
  cleanup_free char *url = NULL;
  CURL *h;

  pthread_once (&global_once, global_init);
  h = curl_easy_init ();
  if (h == NULL)
    {
      cl_error_make (err, 0, "libcurl: no handle");
      return NULL;
    }
  if (remote->unix_socket)
    {
      url = cl_strdup_printf ("http://cloison%s", path_query);
      curl_easy_setopt (h, CURLOPT_UNIX_SOCKET_PATH, remote->unix_socket);
    }
  else
    {
      size_t n = strlen (remote->url);
      while (n > 0 && remote->url[n - 1] == '/')
        n--;
      url = cl_strdup_printf ("%.*s%s", (int)n, remote->url, path_query);
      curl_easy_setopt (h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_3);
      if (remote->client_cert)
        {
          curl_easy_setopt (h, CURLOPT_SSLCERT, remote->client_cert);
          curl_easy_setopt (h, CURLOPT_SSLKEY, remote->client_key);
        }
      /* the pinned certificate only: no system CA, and its key pinned;
         the name it carries is the server's own choice, not checked */
      curl_easy_setopt (h, CURLOPT_CAPATH, NULL);
      curl_easy_setopt (h, CURLOPT_SSL_VERIFYHOST, 0L);
      if (remote->server_cert)
        {
          struct curl_blob ca
              = { (void *)remote->server_cert, strlen (remote->server_cert), CURL_BLOB_COPY };
          if (cl_api_tls_pubkey_pin (remote->server_cert, pin, err) < 0)
            {
              curl_easy_cleanup (h);
              return NULL;
            }
          curl_easy_setopt (h, CURLOPT_CAINFO, NULL);
          curl_easy_setopt (h, CURLOPT_CAINFO_BLOB, &ca);
          curl_easy_setopt (h, CURLOPT_PINNEDPUBLICKEY, *pin);
          curl_easy_setopt (h, CURLOPT_SSL_VERIFYPEER, 1L);
        }
      else
        curl_easy_setopt (h, CURLOPT_SSL_VERIFYPEER, 0L);
    }
  curl_easy_setopt (h, CURLOPT_URL, url);
  if (remote->share)
    curl_easy_setopt (h, CURLOPT_SHARE, remote->share);
  curl_easy_setopt (h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (h, CURLOPT_USERAGENT, "cloison/" CLOISON_VERSION);
  curl_easy_setopt (h, CURLOPT_CONNECTTIMEOUT, 10L);
  return h;
}

void *
cl_api_remote_share_new (void)
{
  CURLSH *sh;

  pthread_once (&global_once, global_init);
  sh = curl_share_init ();
  if (sh == NULL)
    return NULL;
  curl_share_setopt (sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
  curl_share_setopt (sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  return sh;
}

void
cl_api_remote_share_free (void *share)
{
  if (share)
    curl_share_cleanup (share);
}

static int
curl_fail (const struct cl_api_remote *remote, CURLcode c, const char *detail, cl_error_t *err)
{
  const char *where = remote->unix_socket ? remote->unix_socket : remote->url;
  if (c == CURLE_SSL_PINNEDPUBKEYNOTMATCH || c == CURLE_PEER_FAILED_VERIFICATION)
    return cl_error_make (err, 0,
                          "`%s`: the server's certificate is not the one pinned for it"
                          " (%s)",
                          where, *detail ? detail : curl_easy_strerror (c));
  return cl_error_make (err, 0, "`%s`: %s", where, *detail ? detail : curl_easy_strerror (c));
}

int
cl_api_curl_body (void *curl, const struct cl_api_request *req, struct curl_slist **headers,
                  FILE **file, cl_error_t *err)
{
  CURL *h = curl;
  struct stat st;

  *file = NULL;
  if (req->body_file)
    {
      cleanup_free char *digest = NULL;
      *file = fopen (req->body_file, "rbe");
      if (*file == NULL || fstat (fileno (*file), &st) < 0)
        {
          int e = errno;
          if (*file)
            fclose (*file);
          *file = NULL;
          return cl_error_make (err, e, "open `%s`", req->body_file);
        }
      /* read as it goes (curl's default read callback: fread) */
      curl_easy_setopt (h, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt (h, CURLOPT_CUSTOMREQUEST, req->method);
      curl_easy_setopt (h, CURLOPT_READDATA, *file);
      curl_easy_setopt (h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)st.st_size);
      /* a transfer stalled for a minute ends */
      curl_easy_setopt (h, CURLOPT_LOW_SPEED_LIMIT, 1L);
      curl_easy_setopt (h, CURLOPT_LOW_SPEED_TIME, 60L);
      *headers = curl_slist_append (*headers, "Content-Type: application/octet-stream");
      if (req->digest)
        {
          digest = cl_strdup_printf ("X-Cloison-Digest: %s", req->digest);
          *headers = curl_slist_append (*headers, digest);
        }
    }
  else if (req->body)
    {
      curl_easy_setopt (h, CURLOPT_POSTFIELDS, req->body);
      curl_easy_setopt (h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
      *headers = curl_slist_append (*headers, "Content-Type: application/json");
    }
  if (req->if_match)
    {
      cleanup_free char *im = cl_strdup_printf ("If-Match: %s", req->if_match);
      *headers = curl_slist_append (*headers, im);
    }
  return 0;
}

int
cl_api_remote_request (const struct cl_api_remote *remote, const struct cl_api_request *req,
                       struct cl_api_response *resp, cl_error_t *err)
{
  cleanup_free char *pin = NULL, *pq = NULL;
  FILE *file = NULL;
  struct cl_buffer body = { NULL, 0 };
  struct headers hd = { NULL, NULL, false };
  struct curl_slist *hl = NULL;
  char detail[CURL_ERROR_SIZE] = "";
  long status = 0;
  CURLcode c;
  CURL *h;

  memset (resp, 0, sizeof *resp);
  pq = cl_strdup_printf ("%s%s%s", req->path, req->query && *req->query ? "?" : "",
                         req->query && *req->query ? req->query : "");
  h = remote_handle (remote, pq, &pin, err);
  if (h == NULL)
    return -1;
  curl_easy_setopt (h, CURLOPT_CUSTOMREQUEST, req->method);
  if (cl_api_curl_body (h, req, &hl, &file, err) < 0)
    {
      curl_easy_cleanup (h);
      return -1;
    }
  curl_easy_setopt (h, CURLOPT_HTTPHEADER, hl);
  /* an upload takes as long as it takes (curl_body: a stalled one ends) */
  curl_easy_setopt (h, CURLOPT_TIMEOUT,
                    file                ? 0L
                    : remote->timeout_s ? remote->timeout_s
                                        : (long)REMOTE_TIMEOUT_DEFAULT);
  curl_easy_setopt (h, CURLOPT_WRITEFUNCTION, buf_write);
  curl_easy_setopt (h, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt (h, CURLOPT_HEADERFUNCTION, header_write);
  curl_easy_setopt (h, CURLOPT_HEADERDATA, &hd);
  curl_easy_setopt (h, CURLOPT_ERRORBUFFER, detail);
  c = curl_easy_perform (h);
  curl_easy_getinfo (h, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup (h);
  curl_slist_free_all (hl);
  if (file)
    fclose (file);
  if (c != CURLE_OK)
    {
      free (body.data);
      free (hd.location);
      free (hd.etag);
      return curl_fail (remote, c, detail, err);
    }
  resp->status = (int)status;
  resp->location = hd.location;
  resp->etag = hd.etag;
  if (hd.json && body.data)
    resp->json = json_loadb (body.data, body.len, 0, NULL);
  if (resp->json)
    {
      resp->content_type = "application/json";
      free (body.data);
    }
  else
    {
      resp->content_type = "text/plain";
      resp->raw = body.data ? body.data : cl_xstrdup ("");
      resp->raw_len = body.len;
    }
  return 0;
}

int
cl_api_remote_server_cert (const struct cl_api_remote *remote, char **pem, cl_error_t *err)
{
  struct cl_api_remote first = *remote;
  struct curl_certinfo *ci = NULL;
  struct cl_buffer body = { NULL, 0 };
  char detail[CURL_ERROR_SIZE] = "";
  CURLcode c;
  CURL *h;

  *pem = NULL;
  first.server_cert = NULL;
  h = remote_handle (&first, "/1.0", NULL, err);
  if (h == NULL)
    return -1;
  curl_easy_setopt (h, CURLOPT_CERTINFO, 1L);
  curl_easy_setopt (h, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt (h, CURLOPT_WRITEFUNCTION, buf_write);
  curl_easy_setopt (h, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt (h, CURLOPT_ERRORBUFFER, detail);
  c = curl_easy_perform (h);
  if (c == CURLE_OK && curl_easy_getinfo (h, CURLINFO_CERTINFO, &ci) == CURLE_OK && ci
      && ci->num_of_certs > 0)
    for (struct curl_slist *s = ci->certinfo[0]; s; s = s->next)
      if (strncmp (s->data, "Cert:", 5) == 0)
        *pem = cl_xstrdup (s->data + 5);
  curl_easy_cleanup (h);
  free (body.data);
  if (c != CURLE_OK)
    return curl_fail (remote, c, detail, err);
  if (*pem == NULL)
    return cl_error_make (err, 0, "`%s`: the server presented no certificate", remote->url);
  return 0;
}

struct lines
{
  struct cl_buffer b;
  int (*fn) (const char *line, void *data);
  void *data;
  bool stopped;
};

static size_t
lines_write (char *p, size_t size, size_t n, void *data)
{
  struct lines *l = data;
  char *nl;
  cl_buffer_append (&l->b, p, size * n);
  while ((nl = memchr (l->b.data, '\n', l->b.len)) != NULL)
    {
      size_t k = (size_t)(nl - l->b.data);
      *nl = '\0';
      /* empty lines are the server's keep-alives */
      if (k > 0 && l->fn (l->b.data, l->data) != 0)
        {
          l->stopped = true;
          return 0;
        }
      memmove (l->b.data, nl + 1, l->b.len - k - 1);
      l->b.len -= k + 1;
      l->b.data[l->b.len] = '\0';
    }
  return size * n;
}

int
cl_api_remote_events (const struct cl_api_remote *remote, const char *query,
                      int (*fn) (const char *line, void *data), void *data, cl_error_t *err)
{
  cleanup_free char *pin = NULL, *pq = NULL;
  struct lines l = { { NULL, 0 }, fn, data, false };
  char detail[CURL_ERROR_SIZE] = "";
  long status = 0;
  CURLcode c;
  CURL *h;

  pq = cl_strdup_printf ("/1.0/events%s%s", query && *query ? "?" : "", query ? query : "");
  h = remote_handle (remote, pq, &pin, err);
  if (h == NULL)
    return -1;
  curl_easy_setopt (h, CURLOPT_WRITEFUNCTION, lines_write);
  curl_easy_setopt (h, CURLOPT_WRITEDATA, &l);
  curl_easy_setopt (h, CURLOPT_ERRORBUFFER, detail);
  curl_easy_setopt (h, CURLOPT_FAILONERROR, 1L);
  /* the server sends an empty line every 10 s: silence means it is gone */
  curl_easy_setopt (h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt (h, CURLOPT_LOW_SPEED_TIME, 30L);
  c = curl_easy_perform (h);
  curl_easy_getinfo (h, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup (h);
  free (l.b.data);
  if (l.stopped || c == CURLE_OK)
    return 0;
  if (c == CURLE_HTTP_RETURNED_ERROR)
    return cl_error_make (err, 0, "`%s`: events: HTTP %ld%s",
                          remote->unix_socket ? remote->unix_socket : remote->url, status,
                          status == 403 ? " (this client is not trusted there)" : "");
  return curl_fail (remote, c, detail, err);
}

/* ---- websockets (the client's side) ---- */

#define WSC_TIMEOUT_MS 30000
#define WSC_HEAD_MAX 16384

struct cl_api_wsc
{
  CURL *h;
  int fd;
  char *pin;
  struct cl_buffer in; /* read, not yet a whole frame */
  size_t max;
  /* the server closed it, or a write failed: libcurl is not called on
     it again (a send on a connection it saw end touches freed memory) */
  bool gone;
};

/* Waits until fd is ready for `events`; -1 after WSC_TIMEOUT_MS. */
static int
wsc_wait (int fd, short events)
{
  struct pollfd p = { .fd = fd, .events = events };
  int r;

  while ((r = poll (&p, 1, WSC_TIMEOUT_MS)) < 0 && errno == EINTR)
    ;
  return r > 0 ? 0 : -1;
}

static int
wsc_write_all (struct cl_api_wsc *w, const void *data, size_t len)
{
  const char *p = data;

  if (w->gone)
    return -1;
  while (len > 0)
    {
      size_t n = 0;
      CURLcode c = curl_easy_send (w->h, p, len, &n);
      if (c == CURLE_AGAIN)
        {
          if (wsc_wait (w->fd, POLLOUT) < 0)
            return -1;
          continue;
        }
      if (c != CURLE_OK)
        {
          w->gone = true;
          return -1;
        }
      p += n;
      len -= n;
    }
  return 0;
}

/* One read into w->in: its size, 0 when nothing is there now, -1 at the
   end of the stream or on an error. */
static ssize_t
wsc_fill (struct cl_api_wsc *w)
{
  char buf[16384];
  size_t n = 0;
  CURLcode c = w->gone ? CURLE_RECV_ERROR : curl_easy_recv (w->h, buf, sizeof buf, &n);

  if (c == CURLE_AGAIN)
    return 0;
  if (c != CURLE_OK || n == 0)
    {
      w->gone = true;
      return -1;
    }
  cl_buffer_append (&w->in, buf, n);
  return (ssize_t)n;
}

static void
wsc_consume (struct cl_api_wsc *w, size_t n)
{
  memmove (w->in.data, w->in.data + n, w->in.len - n);
  w->in.len -= n;
}

/* The reply's head (up to its blank line), read whole; its length. */
static int
wsc_read_head (struct cl_api_wsc *w, size_t *head_len)
{
  for (;;)
    {
      char *end = w->in.len ? memmem (w->in.data, w->in.len, "\r\n\r\n", 4) : NULL;
      ssize_t r;
      if (end)
        {
          *head_len = (size_t)(end - w->in.data) + 4;
          return 0;
        }
      if (w->in.len > WSC_HEAD_MAX || (r = wsc_fill (w)) < 0)
        return -1;
      if (r == 0 && wsc_wait (w->fd, POLLIN) < 0)
        return -1;
    }
}

/* The value of header `name` in a reply's head (caller frees), or NULL. */
static char *
head_value (const char *head, size_t len, const char *name)
{
  const char *p = head, *end = head + len;

  while (p < end)
    {
      const char *nl = memchr (p, '\n', (size_t)(end - p));
      size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
      char *v = cl_http_header_value (p, n, name);
      if (v)
        return v;
      p += n;
    }
  return NULL;
}

/* A refused handshake: the API's error envelope in err. */
static int
wsc_refused (struct cl_api_wsc *w, const char *where, const char *path, int status, size_t head_len,
             cl_error_t *err)
{
  cleanup_free char *cl = head_value (w->in.data, head_len, "Content-Length");
  cleanup_json json_t *j = NULL;
  size_t want = cl ? (size_t)strtoul (cl, NULL, 10) : 0;
  const char *msg;

  while (want <= (1u << 20) && w->in.len - head_len < want)
    {
      ssize_t r = wsc_fill (w);
      if (r < 0 || (r == 0 && wsc_wait (w->fd, POLLIN) < 0))
        break;
    }
  if (w->in.len - head_len >= want)
    j = json_loadb (w->in.data + head_len, want, 0, NULL);
  msg = json_string_value (json_object_get (j, "error"));
  if (msg)
    return cl_error_make (err, 0, "%s", msg);
  return cl_error_make (err, 0, "`%s`: %s: HTTP status %d instead of a websocket", where, path,
                        status);
}

int
cl_api_remote_ws_open (const struct cl_api_remote *remote, const char *path_query, size_t max,
                       struct cl_api_wsc **out, cl_error_t *err)
{
  const char *where = remote->unix_socket ? remote->unix_socket : remote->url;
  struct cl_api_remote direct = *remote;
  unsigned char nonce[16];
  gnutls_datum_t in = { nonce, sizeof nonce }, key = { NULL, 0 };
  cleanup_free char *req = NULL, *want = NULL, *got = NULL, *k = NULL;
  char detail[CURL_ERROR_SIZE] = "";
  struct cl_api_wsc *w = cl_xmalloc0 (sizeof *w);
  curl_socket_t fd = CURL_SOCKET_BAD;
  size_t head_len = 0;
  int status = 0;
  CURLcode c;

  *out = NULL;
  w->max = max;
  /* a connection of its own, never one a request would reuse after */
  direct.share = NULL;
  w->h = remote_handle (&direct, path_query, &w->pin, err);
  if (w->h == NULL)
    {
      cl_api_wsc_close (w);
      return -1;
    }
  curl_easy_setopt (w->h, CURLOPT_CONNECT_ONLY, 1L);
  curl_easy_setopt (w->h, CURLOPT_ERRORBUFFER, detail);
  c = curl_easy_perform (w->h);
  if (c == CURLE_OK)
    c = curl_easy_getinfo (w->h, CURLINFO_ACTIVESOCKET, &fd);
  if (c != CURLE_OK || fd == CURL_SOCKET_BAD)
    {
      cl_api_wsc_close (w);
      return curl_fail (remote, c, detail, err);
    }
  w->fd = fd;
  if (gnutls_rnd (GNUTLS_RND_NONCE, nonce, sizeof nonce) < 0
      || gnutls_base64_encode2 (&in, &key) < 0)
    {
      cl_api_wsc_close (w);
      return cl_error_make (err, 0, "websocket: no random key");
    }
  k = strndup ((const char *)key.data, key.size);
  gnutls_free (key.data);
  req = cl_strdup_printf ("GET %s HTTP/1.1\r\nHost: cloison\r\nUser-Agent: cloison/" CLOISON_VERSION
                          "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                          path_query, k);
  if (wsc_write_all (w, req, strlen (req)) < 0 || wsc_read_head (w, &head_len) < 0)
    {
      cl_api_wsc_close (w);
      return cl_error_make (err, 0, "`%s`: %s: the connection ended in the websocket handshake",
                            where, path_query);
    }
  if (sscanf (w->in.data, "HTTP/1.%*d %d", &status) != 1 || status != 101)
    {
      wsc_refused (w, where, path_query, status, head_len, err);
      cl_api_wsc_close (w);
      return -1;
    }
  got = head_value (w->in.data, head_len, "Sec-WebSocket-Accept");
  if (cl_api_ws_accept (k, &want) < 0 || got == NULL || strcmp (got, want) != 0)
    {
      cl_api_wsc_close (w);
      return cl_error_make (err, 0, "`%s`: %s: a websocket handshake without its key", where,
                            path_query);
    }
  wsc_consume (w, head_len);
  *out = w;
  return 0;
}

int
cl_api_wsc_fd (const struct cl_api_wsc *w)
{
  return w->fd;
}

int
cl_api_wsc_send (struct cl_api_wsc *w, int opcode, const void *data, size_t len)
{
  unsigned char h[CL_API_WS_HEADER_MAX], mask[4];
  cleanup_free char *p = NULL;
  size_t n;

  if (gnutls_rnd (GNUTLS_RND_NONCE, mask, sizeof mask) < 0)
    return -1;
  n = cl_api_ws_header (h, opcode, len, mask);
  p = cl_xmalloc0 (n + len + 1);
  memcpy (p, h, n);
  if (len)
    memcpy (p + n, data, len);
  cl_api_ws_mask (p + n, len, mask);
  return wsc_write_all (w, p, n + len);
}

int
cl_api_wsc_recv (struct cl_api_wsc *w, char **payload, size_t *len)
{
  *payload = NULL;
  *len = 0;
  for (;;)
    {
      const unsigned char *h = (const unsigned char *)w->in.data;
      struct cl_api_ws_frame f;
      size_t hs;
      ssize_t r;

      if (w->in.len >= 2 && w->in.len >= (hs = cl_api_ws_header_size (h)))
        {
          /* a server's frames are not masked */
          if (cl_api_ws_header_parse (h, w->max, &f) < 0 || f.masked)
            return -1;
          if (w->in.len - hs >= f.len)
            {
              *payload = cl_xmalloc0 (f.len + 1);
              memcpy (*payload, w->in.data + hs, f.len);
              *len = f.len;
              wsc_consume (w, hs + f.len);
              if (f.opcode == 8)
                w->gone = true; /* the server closes its side at once */
              return f.opcode;
            }
        }
      r = wsc_fill (w);
      if (r <= 0)
        return r < 0 ? -1 : -2;
    }
}

void
cl_api_wsc_close (struct cl_api_wsc *w)
{
  if (w == NULL)
    return;
  if (w->h)
    curl_easy_cleanup (w->h);
  free (w->pin);
  free (w->in.data);
  free (w);
}
