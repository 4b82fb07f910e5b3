/* SPDX-License-Identifier: Apache-2.0 */
/* /1.0/networks over src/net/net.h, opened the way `cloison network`
   opens it: a state database connection per request, crash recovery
   first. */
#include "api/api_internal.h"
#include "common/cleanup.h"
#include "common/db.h"
#include "common/util.h"
#include "net/net.h"

#include <stdlib.h>
#include <string.h>

static void
dbp_close (sqlite3 **db)
{
  if (*db)
    cl_db_close (*db);
}
#define cleanup_db __attribute__ ((cleanup (dbp_close)))

/* The state database after network recovery, or NULL after replying. */
static sqlite3 *
net_db (struct api_call *c)
{
  sqlite3 *db = NULL;
  cl_error_t err = NULL;

  if (cl_db_open (c->ctx->root, &db, &err) < 0 || cl_net_cleanup_stale (db, NULL, 0, &err) < 0)
    {
      if (db)
        cl_db_close (db);
      cl_api_reply_cl_error (c, &err);
      return NULL;
    }
  sqlite3_db_config (db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
  return db;
}

void
cl_api_networks_list (struct api_call *c)
{
  cleanup_db sqlite3 *db = NULL;
  cl_error_t err = NULL;
  json_t *list;
  long recursion;

  if (cl_api_query_int (c, "recursion", 0, 1, 0, &recursion) < 0 || (db = net_db (c)) == NULL)
    return;
  if (cl_net_list (db, &list, &err) < 0)
    {
      cl_api_reply_cl_error (c, &err);
      return;
    }
  if (recursion == 0)
    cl_api_names_to_urls (list, "/1.0/networks/");
  cl_api_reply_sync (c, 200, list);
}

void
cl_api_network_get (struct api_call *c)
{
  cleanup_db sqlite3 *db = NULL;
  cl_error_t err = NULL;
  json_t *j;

  if ((db = net_db (c)) == NULL)
    return;
  if (cl_net_show (db, c->params[0], &j, &err) < 0)
    cl_api_reply_cl_error (c, &err);
  else
    cl_api_reply_sync (c, 200, j);
}

static const struct api_field create_fields[] = {
  { "name", API_STRING, true, NULL },  { "subnet", API_STRING, false, NULL },
  { "mode", API_STRING, false, NULL }, { "vlan", API_INT, false, NULL },
  { "mtu", API_INT, false, NULL },     { NULL, 0, false, NULL },
};

void
cl_api_networks_create (struct api_call *c)
{
  cleanup_db sqlite3 *db = NULL;
  struct cl_net_config cfg = { .mode = CL_NET_NAT };
  cl_error_t err = NULL;
  const char *mode;
  json_t *v;

  if (cl_api_check_body (c, create_fields, true) < 0)
    return;
  cfg.name = json_string_value (json_object_get (c->body, "name"));
  cfg.subnet = json_string_value (json_object_get (c->body, "subnet"));
  if (cl_validate_name (cfg.name, "network name", &err) < 0)
    {
      cl_api_reply_bad_field (c, "name", "%s", err->msg);
      cl_error_release (&err);
      return;
    }
  mode = json_string_value (json_object_get (c->body, "mode"));
  if (mode && strcmp (mode, "nat") != 0 && strcmp (mode, "routed") != 0
      && strcmp (mode, "isolated") != 0)
    {
      cl_api_reply_bad_field (c, "mode", "mode: expected nat, routed or isolated, got `%s`", mode);
      return;
    }
  if (mode)
    cfg.mode = strcmp (mode, "nat") == 0      ? CL_NET_NAT
               : strcmp (mode, "routed") == 0 ? CL_NET_ROUTED
                                              : CL_NET_ISOLATED;
  if ((v = json_object_get (c->body, "vlan")))
    {
      if (json_integer_value (v) < 1 || json_integer_value (v) > 4094)
        {
          cl_api_reply_bad_field (c, "vlan", "vlan: expected a VLAN id 1-4094, got %lld",
                                  (long long)json_integer_value (v));
          return;
        }
      cfg.vlan = (int)json_integer_value (v);
    }
  if ((v = json_object_get (c->body, "mtu")))
    {
      if (json_integer_value (v) < CL_NET_MTU_MIN || json_integer_value (v) > CL_NET_MTU_MAX)
        {
          cl_api_reply_bad_field (c, "mtu", "mtu: expected %d-%d bytes, got %lld", CL_NET_MTU_MIN,
                                  CL_NET_MTU_MAX, (long long)json_integer_value (v));
          return;
        }
      cfg.mtu = (int)json_integer_value (v);
    }
  if ((db = net_db (c)) == NULL)
    return;
  if (cl_net_create (db, &cfg, &err) < 0)
    {
      if (strstr (err->msg, "subnet"))
        {
          cl_api_reply_bad_field (c, "subnet", "%s", err->msg);
          cl_error_release (&err);
        }
      else
        cl_api_reply_cl_error (c, &err);
      return;
    }
  {
    cleanup_free char *url = cl_api_url ("/1.0/networks/", cfg.name);
    json_t *j;
    cl_api_lifecycle (c->ctx, "network-created", url);
    if (cl_net_show (db, cfg.name, &j, &err) < 0)
      cl_api_reply_cl_error (c, &err);
    else
      cl_api_reply_sync (c, 201, j);
  }
}

void
cl_api_network_delete (struct api_call *c)
{
  cleanup_db sqlite3 *db = NULL;
  cl_error_t err = NULL;

  if ((db = net_db (c)) == NULL)
    return;
  if (cl_net_delete (db, c->params[0], &err) < 0)
    {
      cl_api_reply_cl_error (c, &err);
      return;
    }
  {
    cleanup_free char *url = cl_api_url ("/1.0/networks/", c->params[0]);
    cl_api_lifecycle (c->ctx, "network-deleted", url);
  }
  cl_api_reply_sync (c, 200, NULL);
}
