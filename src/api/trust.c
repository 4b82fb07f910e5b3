/* SPDX-License-Identifier: Apache-2.0 */
/* /1.0/certificates, the server's settings (PATCH /1.0), and the access
   of each request: the trust store of api/trust.h. */
#include "api/api_internal.h"
#include "api/tls.h"
#include "api/trust.h"
#include "common/cleanup.h"
#include "common/db.h"
#include "common/json.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOKEN_TTL_DEFAULT (24 * 3600)

static const char schema[]
    = "CREATE TABLE IF NOT EXISTS api_certificates ("
      " fingerprint TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
      " restricted INTEGER NOT NULL DEFAULT 0, certificate TEXT NOT NULL,"
      " created INTEGER NOT NULL);"
      "CREATE TABLE IF NOT EXISTS api_trust_tokens ("
      " secret_sha256 TEXT PRIMARY KEY, name TEXT NOT NULL, created INTEGER NOT NULL,"
      " expires INTEGER NOT NULL);"
      "CREATE TABLE IF NOT EXISTS api_config (key TEXT PRIMARY KEY, value TEXT NOT NULL);";

/* The settings a server knows; each value checked by its function. */
static const char *const config_keys[] = { "core.https_address", NULL };

int
cl_api_trust_init (struct cl_api_ctx *ctx, cl_error_t *err)
{
  int ret = 0;

  pthread_mutex_lock (&ctx->lock);
  if (!ctx->trust_ready)
    {
      if ((ctx->db == NULL && cl_db_open (ctx->root, &ctx->db, err) < 0)
          || cl_db_exec (ctx->db, schema, err) < 0)
        ret = -1;
      else
        ctx->trust_ready = true;
    }
  pthread_mutex_unlock (&ctx->lock);
  return ret;
}

void
cl_api_set_revoke_hook (struct cl_api_ctx *ctx, void (*fn) (void *data, const char *fingerprint),
                        void *data)
{
  pthread_mutex_lock (&ctx->lock);
  ctx->revoke_hook = fn;
  ctx->revoke_data = data;
  pthread_mutex_unlock (&ctx->lock);
}

bool
cl_api_trust_changed (struct cl_api_ctx *ctx)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  bool changed = false;

  pthread_mutex_lock (&ctx->lock);
  if (sqlite3_prepare_v2 (ctx->db, "PRAGMA data_version", -1, &s, NULL) == SQLITE_OK
      && sqlite3_step (s) == SQLITE_ROW)
    {
      int64_t v = sqlite3_column_int64 (s, 0);
      changed = v != ctx->data_version;
      ctx->data_version = v;
    }
  pthread_mutex_unlock (&ctx->lock);
  return changed;
}

enum cl_api_access
cl_api_cert_access (struct cl_api_ctx *ctx, const char *fingerprint)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  enum cl_api_access access = CL_API_ACCESS_NONE;

  if (fingerprint == NULL)
    return CL_API_ACCESS_NONE;
  pthread_mutex_lock (&ctx->lock);
  if (sqlite3_prepare_v2 (ctx->db, "SELECT restricted FROM api_certificates WHERE fingerprint = ?",
                          -1, &s, NULL)
      == SQLITE_OK)
    {
      sqlite3_bind_text (s, 1, fingerprint, -1, SQLITE_STATIC);
      if (sqlite3_step (s) == SQLITE_ROW)
        access = sqlite3_column_int (s, 0) ? CL_API_ACCESS_READ_ONLY : CL_API_ACCESS_FULL;
    }
  pthread_mutex_unlock (&ctx->lock);
  return access;
}

enum cl_api_access
cl_api_request_access (struct cl_api_ctx *ctx, const struct cl_api_request *req)
{
  /* a web console session: its gate (ui_session.c) let it in */
  if (req->console_session)
    return CL_API_ACCESS_FULL;
  return req->remote ? cl_api_cert_access (ctx, req->peer_fingerprint) : CL_API_ACCESS_FULL;
}

int
cl_api_config_get (struct cl_api_ctx *ctx, const char *key, char **value, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  int ret = 0;

  *value = NULL;
  pthread_mutex_lock (&ctx->lock);
  if (cl_db_prepare (ctx->db, "SELECT value FROM api_config WHERE key = ?", &s, err) < 0)
    ret = -1;
  else
    {
      sqlite3_bind_text (s, 1, key, -1, SQLITE_STATIC);
      if (sqlite3_step (s) == SQLITE_ROW)
        *value = cl_xstrdup ((const char *)sqlite3_column_text (s, 0));
    }
  pthread_mutex_unlock (&ctx->lock);
  return ret;
}

int
cl_api_parse_address (const char *s, const char *what, char **host, int *port, cl_error_t *err)
{
  const char *colon, *h = s;
  size_t hlen;
  char *end;
  long p;

  if (s[0] == '[')
    {
      const char *close = strchr (s, ']');
      if (close == NULL || close[1] != ':')
        return cl_error_make (err, 0, "%s `%s`: expected [IPV6]:PORT", what, s);
      h = s + 1;
      hlen = (size_t)(close - h);
      colon = close + 1;
    }
  else
    {
      colon = strrchr (s, ':');
      if (colon == NULL || memchr (s, ':', (size_t)(colon - s)))
        return cl_error_make (err, 0, "%s `%s`: expected HOST:PORT", what, s);
      hlen = (size_t)(colon - s);
    }
  p = strtol (colon + 1, &end, 10);
  if (colon[1] == '\0' || *end || p < 1 || p > 65535)
    return cl_error_make (err, 0, "%s `%s`: the port must be 1-65535", what, s);
  *port = (int)p;
  *host = hlen ? strndup (h, hlen) : NULL;
  if (*host && (strcmp (*host, "0.0.0.0") == 0 || strcmp (*host, "::") == 0))
    free (*host), *host = NULL;
  return 0;
}

/* ---- the server's identity and settings ---- */

static int
server_fingerprint (struct cl_api_ctx *ctx, char fp[CL_API_FINGERPRINT_LEN], cl_error_t *err)
{
  cleanup_free char *crt = NULL;
  if (cl_api_tls_server_keypair (ctx->root, &crt, NULL, err) < 0)
    return -1;
  return cl_api_tls_fingerprint_pem (crt, fp, err);
}

/* The addresses a client may reach us at: core.https_address, or each
   address of the host when it names every address. */
static json_t *
server_addresses (struct cl_api_ctx *ctx)
{
  cleanup_free char *addr = NULL, *host = NULL;
  json_t *list = json_array ();
  struct ifaddrs *ifa = NULL;
  cl_error_t err = NULL;
  int port;

  if (cl_api_config_get (ctx, "core.https_address", &addr, &err) < 0 || addr == NULL
      || cl_api_parse_address (addr, "core.https_address", &host, &port, &err) < 0)
    {
      cl_error_release (&err);
      return list;
    }
  if (host)
    {
      json_array_append_new (list, json_string (addr));
      return list;
    }
  if (getifaddrs (&ifa) < 0)
    return list;
  for (struct ifaddrs *i = ifa; i; i = i->ifa_next)
    {
      char buf[INET6_ADDRSTRLEN];
      if (i->ifa_addr == NULL || !(i->ifa_flags & IFF_UP))
        continue;
      if (i->ifa_addr->sa_family == AF_INET
          && inet_ntop (AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, buf, sizeof buf))
        json_array_append_new (list, json_sprintf ("%s:%d", buf, port));
      else if (i->ifa_addr->sa_family == AF_INET6
               && !IN6_IS_ADDR_LINKLOCAL (&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr)
               && inet_ntop (AF_INET6, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, buf,
                             sizeof buf))
        json_array_append_new (list, json_sprintf ("[%s]:%d", buf, port));
    }
  freeifaddrs (ifa);
  return list;
}

json_t *
cl_api_server_tls_info (struct cl_api_ctx *ctx)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  json_t *config = json_object (), *info;
  char fp[CL_API_FINGERPRINT_LEN] = "";
  cleanup_free char *crt_path = cl_strdup_printf ("%s/tls/server.crt", ctx->root);
  cleanup_free char *crt = NULL;
  cl_error_t err = NULL;

  pthread_mutex_lock (&ctx->lock);
  if (sqlite3_prepare_v2 (ctx->db, "SELECT key, value FROM api_config ORDER BY key", -1, &s, NULL)
      == SQLITE_OK)
    while (sqlite3_step (s) == SQLITE_ROW)
      json_object_set_new (config, (const char *)sqlite3_column_text (s, 0),
                           json_string ((const char *)sqlite3_column_text (s, 1)));
  pthread_mutex_unlock (&ctx->lock);
  /* read, not made: a server that never served TLS has none yet */
  if (cl_read_file (crt_path, &crt, NULL, &err) < 0
      || cl_api_tls_fingerprint_pem (crt, fp, &err) < 0)
    cl_error_release (&err);
  info = json_pack ("{s:o, s:o}", "config", config, "addresses", server_addresses (ctx));
  if (*fp)
    json_object_set_new (info, "certificate_fingerprint", json_string (fp));
  return info;
}

static const struct api_field server_patch_fields[] = {
  { "config", API_STRING_MAP, true, NULL },
  { NULL, 0, false, NULL },
};

void
cl_api_server_patch (struct api_call *c)
{
  json_t *config, *v;
  const char *key;
  cl_error_t err = NULL;

  if (cl_api_check_body (c, server_patch_fields, true) < 0)
    return;
  config = json_object_get (c->body, "config");
  json_object_foreach (config, key, v)
  {
    cleanup_free char *path = cl_api_path_join ("config", key);
    cleanup_free char *host = NULL;
    const char *const *k = config_keys;
    int port;
    while (*k && strcmp (*k, key) != 0)
      k++;
    if (*k == NULL)
      {
        cl_api_reply_bad_field (c, path, "%s: unknown setting (known: core.https_address)", path);
        return;
      }
    if (*json_string_value (v)
        && cl_api_parse_address (json_string_value (v), path, &host, &port, &err) < 0)
      {
        cl_api_reply_bad_field (c, path, "%s", err->msg);
        cl_error_release (&err);
        return;
      }
  }
  pthread_mutex_lock (&c->ctx->lock);
  if (cl_db_begin (c->ctx->db, &err) == 0)
    {
      json_object_foreach (config, key, v)
      {
        cleanup_stmt sqlite3_stmt *s = NULL;
        bool unset = *json_string_value (v) == '\0';
        if (cl_db_prepare (c->ctx->db,
                           unset ? "DELETE FROM api_config WHERE key = ?1"
                                 : "INSERT OR REPLACE INTO api_config (key, value) VALUES (?1, ?2)",
                           &s, &err)
            < 0)
          break;
        sqlite3_bind_text (s, 1, key, -1, SQLITE_STATIC);
        if (!unset)
          sqlite3_bind_text (s, 2, json_string_value (v), -1, SQLITE_STATIC);
        if (cl_db_step_done (c->ctx->db, s, &err) < 0)
          break;
      }
      if (err == NULL)
        cl_db_commit (c->ctx->db, &err);
      if (err)
        cl_db_rollback (c->ctx->db);
    }
  pthread_mutex_unlock (&c->ctx->lock);
  if (err)
    cl_api_reply_cl_error (c, &err);
  else
    cl_api_reply_sync (c, 200, json_pack ("{s:o}", "config", json_deep_copy (config)));
}

/* ---- certificates ---- */

static json_t *
cert_row (sqlite3_stmt *s)
{
  return json_pack ("{s:s, s:s, s:s, s:b, s:s, s:I}", "name", sqlite3_column_text (s, 1), "type",
                    "client", "fingerprint", sqlite3_column_text (s, 0), "restricted",
                    sqlite3_column_int (s, 2), "certificate", sqlite3_column_text (s, 3), "created",
                    (json_int_t)sqlite3_column_int64 (s, 4));
}

#define CERT_COLUMNS "fingerprint, name, restricted, certificate, created"

void
cl_api_certificates_list (struct api_call *c)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  json_t *list = json_array ();
  cl_error_t err = NULL;
  long recursion;

  if (cl_api_query_int (c, "recursion", 0, 1, 0, &recursion) < 0)
    {
      json_decref (list);
      return;
    }
  pthread_mutex_lock (&c->ctx->lock);
  if (cl_db_prepare (c->ctx->db, "SELECT " CERT_COLUMNS " FROM api_certificates ORDER BY name", &s,
                     &err)
      == 0)
    while (sqlite3_step (s) == SQLITE_ROW)
      json_array_append_new (
          list, recursion ? cert_row (s)
                          : json_sprintf ("/1.0/certificates/%s", sqlite3_column_text (s, 0)));
  pthread_mutex_unlock (&c->ctx->lock);
  if (err)
    {
      json_decref (list);
      cl_api_reply_cl_error (c, &err);
      return;
    }
  cl_api_reply_sync (c, 200, list);
}

/* The certificate a path parameter names: its fingerprint, a prefix of
   it (8 hex digits or more) that names one, or its name.  Replies 404 or
   409 and returns -1 when none or several match.  Lock held. */
static int
cert_find (struct api_call *c, char fp[CL_API_FINGERPRINT_LEN], json_t **obj)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  const char *ref = c->params[0];
  cleanup_free char *like = cl_strdup_printf ("%s%%", ref);
  bool hex = strlen (ref) >= 8 && strspn (ref, "0123456789abcdef") == strlen (ref);
  cl_error_t err = NULL;
  int n = 0;

  /* a name that is also another's fingerprint prefix: the name wins */
  if (cl_db_prepare (c->ctx->db,
                     "SELECT " CERT_COLUMNS ", name = ?1 FROM api_certificates"
                     " WHERE name = ?1 OR (?3 AND fingerprint LIKE ?2) ORDER BY name = ?1 DESC",
                     &s, &err)
      < 0)
    {
      cl_api_reply_cl_error (c, &err);
      return -1;
    }
  sqlite3_bind_text (s, 1, ref, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 2, like, -1, SQLITE_STATIC);
  sqlite3_bind_int (s, 3, hex);
  while (sqlite3_step (s) == SQLITE_ROW)
    {
      if (n++ > 0)
        continue; /* counted only */
      snprintf (fp, CL_API_FINGERPRINT_LEN, "%s", sqlite3_column_text (s, 0));
      if (obj)
        json_decref (*obj), *obj = cert_row (s);
      if (sqlite3_column_int (s, 5))
        return 0;
    }
  if (n == 1)
    return 0;
  if (obj)
    json_decref (*obj), *obj = NULL;
  if (n == 0)
    cl_api_reply_error (c, 404, "certificate `%s` not found", ref);
  else
    cl_api_reply_error (c, 409, "certificate `%s`: the prefix matches %d certificates", ref, n);
  return -1;
}

void
cl_api_certificate_get (struct api_call *c)
{
  char fp[CL_API_FINGERPRINT_LEN];
  json_t *obj = NULL;
  int r;

  pthread_mutex_lock (&c->ctx->lock);
  r = cert_find (c, fp, &obj);
  pthread_mutex_unlock (&c->ctx->lock);
  if (r == 0)
    cl_api_reply_sync (c, 200, obj);
}

/* Inserts a certificate (lock held, in a transaction or not). */
static int
cert_insert (struct api_call *c, const char *name, const char *pem, const char *fp, bool restricted,
             cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *s = NULL;

  if (cl_db_prepare (c->ctx->db,
                     "INSERT INTO api_certificates (" CERT_COLUMNS ") VALUES (?, ?, ?, ?, ?)", &s,
                     err)
      < 0)
    return -1;
  sqlite3_bind_text (s, 1, fp, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 2, name, -1, SQLITE_STATIC);
  sqlite3_bind_int (s, 3, restricted);
  sqlite3_bind_text (s, 4, pem, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (s, 5, (sqlite3_int64)time (NULL));
  return cl_db_step_done (c->ctx->db, s, err);
}

/* 409 when the name or the fingerprint is taken (lock held). */
static int
cert_check_free (struct api_call *c, const char *name, const char *fp)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  cl_error_t err = NULL;

  if (cl_db_prepare (c->ctx->db,
                     "SELECT name, fingerprint = ?2 FROM api_certificates"
                     " WHERE name = ?1 OR fingerprint = ?2",
                     &s, &err)
      < 0)
    {
      cl_api_reply_cl_error (c, &err);
      return -1;
    }
  sqlite3_bind_text (s, 1, name ? name : "", -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 2, fp ? fp : "", -1, SQLITE_STATIC);
  if (sqlite3_step (s) != SQLITE_ROW)
    return 0;
  if (sqlite3_column_int (s, 1))
    cl_api_reply_error (c, 409, "this certificate is trusted already, as `%s`",
                        sqlite3_column_text (s, 0));
  else
    cl_api_reply_error (c, 409, "a certificate named `%s` exists already", name);
  return -1;
}

static void
hex_of (const unsigned char *b, size_t n, char *out)
{
  for (size_t i = 0; i < n; i++)
    snprintf (out + 2 * i, 3, "%02x", b[i]);
}

static void
secret_hash (const char *secret, char out[CL_API_FINGERPRINT_LEN])
{
  unsigned char d[32];
  gnutls_hash_fast (GNUTLS_DIG_SHA256, secret, strlen (secret), d);
  hex_of (d, sizeof d, out);
}

/* Issues a one-time token for `name`: base64 of
   {"client_name","fingerprint","addresses","secret","expires_at"}. */
static void
token_issue (struct api_call *c, const char *name, long ttl)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  cleanup_free char *json = NULL;
  char fp[CL_API_FINGERPRINT_LEN], hash[CL_API_FINGERPRINT_LEN], secret[65], when[64];
  unsigned char rnd[32];
  gnutls_datum_t in, out = { NULL, 0 };
  time_t now = time (NULL);
  cl_error_t err = NULL;
  json_t *t;
  int r;

  if (server_fingerprint (c->ctx, fp, &err) < 0)
    {
      cl_api_reply_cl_error (c, &err);
      return;
    }
  gnutls_rnd (GNUTLS_RND_KEY, rnd, sizeof rnd);
  hex_of (rnd, sizeof rnd, secret);
  secret_hash (secret, hash);
  cl_api_time_string (now + ttl, when, sizeof when);
  pthread_mutex_lock (&c->ctx->lock);
  r = cert_check_free (c, name, NULL);
  /* the tokens nobody redeemed in time go with each new one */
  if (r == 0
      && cl_db_exec (c->ctx->db, "DELETE FROM api_trust_tokens WHERE expires < unixepoch ()", &err)
             < 0)
    r = -1;
  if (r == 0
      && (cl_db_prepare (c->ctx->db,
                         "INSERT INTO api_trust_tokens (secret_sha256, name, created, expires)"
                         " VALUES (?, ?, ?, ?)",
                         &s, &err)
              < 0
          || (sqlite3_bind_text (s, 1, hash, -1, SQLITE_STATIC),
              sqlite3_bind_text (s, 2, name, -1, SQLITE_STATIC), sqlite3_bind_int64 (s, 3, now),
              sqlite3_bind_int64 (s, 4, now + ttl), cl_db_step_done (c->ctx->db, s, &err) < 0)))
    r = -1;
  pthread_mutex_unlock (&c->ctx->lock);
  if (r < 0)
    {
      if (err)
        cl_api_reply_cl_error (c, &err);
      return;
    }
  t = json_pack ("{s:s, s:s, s:o, s:s, s:s}", "client_name", name, "fingerprint", fp, "addresses",
                 server_addresses (c->ctx), "secret", secret, "expires_at", when);
  json = json_dumps (t, JSON_COMPACT);
  in.data = (unsigned char *)json;
  in.size = (unsigned)strlen (json);
  if (gnutls_base64_encode2 (&in, &out) < 0)
    abort ();
  json_object_del (t, "secret");
  json_object_set_new (t, "token", json_stringn ((const char *)out.data, out.size));
  gnutls_free (out.data);
  cl_api_reply_sync (c, 200, t);
}

/* Decodes a token; replies 400 naming it and returns NULL when it is not
   one. */
static json_t *
token_decode (struct api_call *c, const char *token)
{
  gnutls_datum_t in = { (unsigned char *)token, (unsigned)strlen (token) }, out = { NULL, 0 };
  json_t *j = NULL;

  if (*token && gnutls_base64_decode2 (&in, &out) >= 0)
    {
      j = json_loadb ((const char *)out.data, out.size, 0, NULL);
      gnutls_free (out.data);
    }
  if (!json_is_object (j) || !json_is_string (json_object_get (j, "secret"))
      || !json_is_string (json_object_get (j, "fingerprint")))
    {
      json_decref (j);
      cl_api_reply_bad_field (c, "trust_token",
                              "trust_token: not a trust token (base64 JSON from"
                              " `cloison config trust add`)");
      return NULL;
    }
  return j;
}

/* An untrusted client presents a token: its own certificate becomes
   trusted under the token's name, and the token is spent. */
static void
token_redeem (struct api_call *c, const char *token)
{
  cleanup_json json_t *t = token_decode (c, token);
  cleanup_stmt sqlite3_stmt *s = NULL;
  char fp[CL_API_FINGERPRINT_LEN], hash[CL_API_FINGERPRINT_LEN];
  cleanup_free char *name = NULL;
  const char *peer = c->req->peer_fingerprint;
  cl_error_t err = NULL;
  int64_t expires = 0;
  bool found = false;

  if (t == NULL)
    return;
  if (peer == NULL || c->req->peer_certificate == NULL)
    {
      cl_api_reply_error (c, 400,
                          "trust_token: no client certificate: present one over TLS to be"
                          " trusted");
      return;
    }
  if (server_fingerprint (c->ctx, fp, &err) < 0)
    {
      cl_api_reply_cl_error (c, &err);
      return;
    }
  if (strcmp (fp, json_string_value (json_object_get (t, "fingerprint"))) != 0)
    {
      cl_api_reply_error (c, 403, "trust_token: issued by another server (fingerprint %.16s...)",
                          json_string_value (json_object_get (t, "fingerprint")));
      return;
    }
  secret_hash (json_string_value (json_object_get (t, "secret")), hash);
  pthread_mutex_lock (&c->ctx->lock);
  if (cl_db_begin (c->ctx->db, &err) == 0)
    {
      if (cl_db_prepare (c->ctx->db,
                         "DELETE FROM api_trust_tokens WHERE secret_sha256 = ?"
                         " RETURNING name, expires",
                         &s, &err)
          == 0)
        {
          sqlite3_bind_text (s, 1, hash, -1, SQLITE_STATIC);
          if (sqlite3_step (s) == SQLITE_ROW)
            {
              found = true;
              name = cl_xstrdup ((const char *)sqlite3_column_text (s, 0));
              expires = sqlite3_column_int64 (s, 1);
            }
          sqlite3_reset (s);
        }
      /* the token is spent whatever follows: one use, even a failed one */
      if (err == NULL && found && expires >= time (NULL) && cert_check_free (c, name, peer) == 0)
        cert_insert (c, name, c->req->peer_certificate, peer, false, &err);
      if (err == NULL)
        cl_db_commit (c->ctx->db, &err);
      if (err)
        cl_db_rollback (c->ctx->db);
    }
  pthread_mutex_unlock (&c->ctx->lock);
  if (err)
    cl_api_reply_cl_error (c, &err);
  else if (c->resp->json)
    ; /* cert_check_free replied */
  else if (!found)
    cl_api_reply_error (c, 403, "trust_token: unknown or used already");
  else if (expires < time (NULL))
    cl_api_reply_error (c, 403, "trust_token: expired");
  else
    cl_api_reply_sync (c, 200,
                       json_pack ("{s:s, s:s, s:s, s:b}", "name", name, "type", "client",
                                  "fingerprint", peer, "restricted", 0));
}

static const struct api_field add_fields[] = {
  { "name", API_STRING, false, NULL },
  { "token", API_BOOL, false, NULL },
  { "trust_token", API_STRING, false, NULL },
  { "certificate", API_STRING, false, NULL },
  { "restricted", API_BOOL, false, NULL },
  { "expires", API_INT, false, NULL },
  { NULL, 0, false, NULL },
};

void
cl_api_certificates_add (struct api_call *c)
{
  const char *name, *pem;
  json_t *expires;
  cl_error_t err = NULL;

  if (cl_api_check_body (c, add_fields, true) < 0)
    return;
  if (json_object_get (c->body, "trust_token"))
    {
      if (json_object_size (c->body) != 1)
        cl_api_reply_bad_field (c, "trust_token", "trust_token: goes alone in the body");
      else
        token_redeem (c, json_string_value (json_object_get (c->body, "trust_token")));
      return;
    }
  if (c->access != CL_API_ACCESS_FULL)
    {
      cl_api_reply_error (c, 403, "not trusted: only a trust token may be posted");
      return;
    }
  name = json_string_value (json_object_get (c->body, "name"));
  if (name == NULL)
    {
      cl_api_reply_bad_field (c, "name", "name: required field missing");
      return;
    }
  if (cl_validate_name (name, "name", &err) < 0)
    {
      cl_api_reply_bad_field (c, "name", "%s", err->msg);
      cl_error_release (&err);
      return;
    }
  expires = json_object_get (c->body, "expires");
  if (json_is_true (json_object_get (c->body, "token")))
    {
      long ttl = expires ? (long)json_integer_value (expires) : TOKEN_TTL_DEFAULT;
      if (json_object_get (c->body, "certificate") || json_object_get (c->body, "restricted"))
        cl_api_reply_bad_field (c, "token", "token: a token carries no certificate");
      else if (ttl < 1 || ttl > 365 * 86400L)
        cl_api_reply_bad_field (c, "expires", "expires: seconds, 1 to 31536000");
      else
        token_issue (c, name, ttl);
      return;
    }
  pem = json_string_value (json_object_get (c->body, "certificate"));
  if (pem == NULL || expires)
    {
      cl_api_reply_bad_field (c, "certificate",
                              "certificate: required (a PEM certificate), unless token is true");
      return;
    }
  {
    char fp[CL_API_FINGERPRINT_LEN];
    int r;
    if (cl_api_tls_fingerprint_pem (pem, fp, &err) < 0)
      {
        cl_api_reply_bad_field (c, "certificate", "%s", err->msg);
        cl_error_release (&err);
        return;
      }
    pthread_mutex_lock (&c->ctx->lock);
    r = cert_check_free (c, name, fp);
    if (r == 0)
      r = cert_insert (c, name, pem, fp, json_is_true (json_object_get (c->body, "restricted")),
                       &err);
    pthread_mutex_unlock (&c->ctx->lock);
    if (err)
      cl_api_reply_cl_error (c, &err);
    else if (r == 0)
      cl_api_reply_sync (c, 200,
                         json_pack ("{s:s, s:s, s:s, s:b}", "name", name, "type", "client",
                                    "fingerprint", fp, "restricted",
                                    json_is_true (json_object_get (c->body, "restricted"))));
  }
}

static const struct api_field patch_fields[] = {
  { "name", API_STRING, false, NULL },
  { "restricted", API_BOOL, false, NULL },
  { NULL, 0, false, NULL },
};

void
cl_api_certificate_patch (struct api_call *c)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  char fp[CL_API_FINGERPRINT_LEN];
  const char *name = json_string_value (json_object_get (c->body, "name"));
  json_t *restricted = json_object_get (c->body, "restricted"), *obj = NULL;
  cl_error_t err = NULL;
  int r;

  if (cl_api_check_body (c, patch_fields, true) < 0)
    return;
  if (name && cl_validate_name (name, "name", &err) < 0)
    {
      cl_api_reply_bad_field (c, "name", "%s", err->msg);
      cl_error_release (&err);
      return;
    }
  pthread_mutex_lock (&c->ctx->lock);
  r = cert_find (c, fp, NULL);
  if (r == 0 && name)
    {
      cleanup_stmt sqlite3_stmt *q = NULL;
      if (cl_db_prepare (c->ctx->db,
                         "SELECT 1 FROM api_certificates WHERE name = ? AND fingerprint != ?", &q,
                         &err)
          == 0)
        {
          sqlite3_bind_text (q, 1, name, -1, SQLITE_STATIC);
          sqlite3_bind_text (q, 2, fp, -1, SQLITE_STATIC);
          if (sqlite3_step (q) == SQLITE_ROW)
            {
              cl_api_reply_error (c, 409, "a certificate named `%s` exists already", name);
              r = -1;
            }
        }
    }
  if (r == 0 && err == NULL
      && cl_db_prepare (c->ctx->db,
                        "UPDATE api_certificates SET name = coalesce(?1, name),"
                        " restricted = coalesce(?2, restricted) WHERE fingerprint = ?3",
                        &s, &err)
             == 0)
    {
      if (name)
        sqlite3_bind_text (s, 1, name, -1, SQLITE_STATIC);
      if (restricted)
        sqlite3_bind_int (s, 2, json_is_true (restricted));
      sqlite3_bind_text (s, 3, fp, -1, SQLITE_STATIC);
      if (cl_db_step_done (c->ctx->db, s, &err) == 0)
        {
          c->params[0] = (free (c->params[0]), cl_xstrdup (fp));
          cert_find (c, fp, &obj);
        }
    }
  pthread_mutex_unlock (&c->ctx->lock);
  if (err)
    cl_api_reply_cl_error (c, &err);
  else if (obj)
    cl_api_reply_sync (c, 200, obj);
}

void
cl_api_certificate_delete (struct api_call *c)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  char fp[CL_API_FINGERPRINT_LEN];
  void (*hook) (void *, const char *) = NULL;
  void *data = NULL;
  cl_error_t err = NULL;
  int r;

  pthread_mutex_lock (&c->ctx->lock);
  r = cert_find (c, fp, NULL);
  if (r == 0
      && (cl_db_prepare (c->ctx->db, "DELETE FROM api_certificates WHERE fingerprint = ?", &s, &err)
              < 0
          || (sqlite3_bind_text (s, 1, fp, -1, SQLITE_STATIC),
              cl_db_step_done (c->ctx->db, s, &err) < 0)))
    r = -1;
  hook = c->ctx->revoke_hook;
  data = c->ctx->revoke_data;
  pthread_mutex_unlock (&c->ctx->lock);
  if (err)
    cl_api_reply_cl_error (c, &err);
  if (r < 0)
    return;
  if (hook)
    hook (data, fp);
  cl_api_reply_sync (c, 200, json_pack ("{s:s}", "fingerprint", fp));
}
