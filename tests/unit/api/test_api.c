/* SPDX-License-Identifier: Apache-2.0 */
/* The request router called in-process (no HTTP): routing, 404/405,
   body and query checks with the field's path, 413, operations that
   fail and are recorded, and the marking of operations a dead process
   left running. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "api/api_internal.h"
#include "common/db.h"
#include "common/util.h"

struct fixture
{
  char *root;
  struct cl_api_ctx *ctx;
};

static int
setup (void **state)
{
  char tmpl[] = "/tmp/cloison-unit-api-XXXXXX";
  struct fixture *f = calloc (1, sizeof *f);
  cl_error_t err = NULL;

  f->root = strdup (mkdtemp (tmpl));
  assert_int_equal (cl_api_ctx_new (f->root, NULL, &f->ctx, &err), 0);
  *state = f;
  return 0;
}

static int
teardown (void **state)
{
  struct fixture *f = *state;
  cl_error_t err = NULL;

  assert_true (cl_api_ctx_free (f->ctx, 10000));
  assert_int_equal (cl_rm_rf (f->root, &err), 0);
  free (f->root);
  free (f);
  return 0;
}

/* Handles one request; returns the status, *out the JSON (caller
   decrefs, may be NULL). */
static int
call (struct cl_api_ctx *ctx, const char *method, const char *path, const char *query,
      const char *body, json_t **out)
{
  struct cl_api_request req = { .method = method,
                                .path = path,
                                .query = query,
                                .body = body,
                                .body_len = body ? strlen (body) : 0 };
  struct cl_api_response resp;
  int status;

  cl_api_handle (ctx, &req, &resp);
  status = resp.status;
  if (out)
    {
      /* large lists come as JSON text */
      *out = resp.json || resp.raw == NULL ? json_incref (resp.json)
                                           : json_loadb (resp.raw, resp.raw_len, 0, NULL);
      if (resp.raw && strcmp (resp.content_type, "application/json") == 0)
        assert_non_null (*out);
    }
  cl_api_response_clear (&resp);
  return status;
}

static const char *
field (json_t *j, const char *key)
{
  return json_string_value (json_object_get (j, key));
}

static void
test_server_and_routes (void **state)
{
  struct fixture *f = *state;
  json_t *j;

  assert_int_equal (call (f->ctx, "GET", "/1.0", NULL, NULL, &j), 200);
  assert_string_equal (field (j, "type"), "sync");
  assert_string_equal (field (json_object_get (j, "metadata"), "api_version"), "1.0");
  json_decref (j);
  /* a trailing slash, an empty list */
  assert_int_equal (call (f->ctx, "GET", "/1.0/instances/", "recursion=1", NULL, &j), 200);
  assert_int_equal (json_array_size (json_object_get (j, "metadata")), 0);
  json_decref (j);
  assert_int_equal (call (f->ctx, "GET", "/1.0/nowhere", NULL, NULL, &j), 404);
  assert_string_equal (field (j, "type"), "error");
  assert_int_equal (json_integer_value (json_object_get (j, "error_code")), 404);
  json_decref (j);
  assert_int_equal (call (f->ctx, "PATCH", "/1.0/operations", NULL, NULL, NULL), 405);
  /* the route table: every route has a method, a path and a summary */
  for (size_t i = 0; cl_api_route (i); i++)
    {
      assert_non_null (cl_api_route (i)->summary);
      assert_true (cl_api_route (i)->path[0] == '/');
    }
  assert_null (cl_api_route (1000));
}

static void
test_bad_input_names_the_field (void **state)
{
  struct fixture *f = *state;
  json_t *j;

  assert_int_equal (call (f->ctx, "POST", "/1.0/instances", NULL, "{\"name\":", &j), 400);
  assert_non_null (strstr (field (j, "error"), "request body:1:"));
  json_decref (j);
  assert_int_equal (call (f->ctx, "POST", "/1.0/instances", NULL,
                          "{\"name\":\"a\",\"source\":{\"type\":\"image\",\"image\":7}}", &j),
                    400);
  assert_string_equal (field (j, "path"), "source.image");
  json_decref (j);
  assert_int_equal (
      call (f->ctx, "POST", "/1.0/networks", NULL, "{\"name\":\"n\",\"vlan\":\"x\"}", &j), 400);
  assert_string_equal (field (j, "path"), "vlan");
  json_decref (j);
  assert_int_equal (call (f->ctx, "POST", "/1.0/instances", NULL, "", &j), 400);
  json_decref (j);
  assert_int_equal (call (f->ctx, "GET", "/1.0/operations", "recursion=x", NULL, NULL), 400);
  assert_int_equal (call (f->ctx, "GET", "/1.0/instances/a%2", NULL, NULL, NULL), 400);
  assert_int_equal (call (f->ctx, "GET", "/1.0/instances/%61bc", NULL, NULL, &j), 404);
  assert_non_null (strstr (field (j, "error"), "`abc`"));
  json_decref (j);
}

static void
test_body_limit (void **state)
{
  struct fixture *f = *state;
  size_t n = CL_API_BODY_LIMIT_DEFAULT + 1;
  char *big = malloc (n + 1);

  memset (big, ' ', n);
  big[n] = '\0';
  assert_int_equal (call (f->ctx, "POST", "/1.0/networks", NULL, big, NULL), 413);
  free (big);
}

/* An operation on a missing snapshot's instance: refused at once (404);
   one that fails in its worker is recorded with the library's message. */
static void
test_operation_failure_is_recorded (void **state)
{
  struct fixture *f = *state;
  char path[128];
  json_t *j, *op;

  assert_int_equal (call (f->ctx, "DELETE", "/1.0/instances/ghost", NULL, NULL, NULL), 404);
  assert_int_equal (call (f->ctx, "GET", "/1.0/operations", NULL, NULL, &j), 200);
  assert_int_equal (json_array_size (json_object_get (j, "metadata")), 0);
  json_decref (j);
  /* a snapshot of a missing instance is checked before; use a name the
     image store cannot resolve at create time instead: refused too */
  assert_int_equal (call (f->ctx, "POST", "/1.0/instances", NULL,
                          "{\"name\":\"a\",\"source\":{\"type\":\"image\",\"image\":\"nope\"}}",
                          &j),
                    400);
  json_decref (j);
  /* a busybox container with an unknown network: accepted, then fails */
  assert_int_equal (call (f->ctx, "POST", "/1.0/instances", NULL,
                          "{\"name\":\"a\",\"source\":{\"type\":\"image\",\"image\":\"busybox\"},"
                          "\"networks\":[\"bad name!\"]}",
                          &j),
                    202);
  snprintf (path, sizeof path, "%s/wait", field (j, "operation"));
  json_decref (j);
  assert_int_equal (call (f->ctx, "GET", path, "timeout=30", NULL, &j), 200);
  op = json_object_get (j, "metadata");
  assert_string_equal (field (op, "status"), "failure");
  assert_non_null (strstr (field (op, "err"), "network name"));
  json_decref (j);
}

/* A row left running by a dead owner is failed by the next context. */
static void
test_interrupted_operation_marked_failed (void **state)
{
  struct fixture *f = *state;
  struct cl_api_ctx *ctx;
  cl_error_t err = NULL;
  sqlite3 *db;
  json_t *j;

  assert_int_equal (cl_db_open (f->root, &db, &err), 0);
  assert_int_equal (cl_db_exec (db,
                                "INSERT INTO api_operations (id, seq, description, resources,"
                                " status, err, created, updated, owner_pid, owner_start) VALUES"
                                " ('dead-op', 99, 'Stopping instance', '{}', 'running', '', 1, 1,"
                                " 999999999, 12345)",
                                &err),
                    0);
  cl_db_close (db);
  assert_int_equal (cl_api_ctx_new (f->root, NULL, &ctx, &err), 0);
  assert_int_equal (call (ctx, "GET", "/1.0/operations/dead-op", NULL, NULL, &j), 200);
  assert_string_equal (field (json_object_get (j, "metadata"), "status"), "failure");
  assert_non_null (strstr (field (json_object_get (j, "metadata"), "err"), "interrupted"));
  json_decref (j);
  assert_true (cl_api_ctx_free (ctx, 1000));
}

/* ---- random requests: no crash, always an envelope ---- */

static unsigned rng = 12345;

static unsigned
next (unsigned n)
{
  rng = rng * 1103515245u + 12345u;
  return (rng >> 8) % n;
}

static const char *const segments[]
    = { "",      "1.0",   "instances",  "x",    "%41",    "%",        "%zz",      "snapshots",
        "state", "logs",  "operations", "wait", "events", "images",   "networks", "..",
        "a%2Fb", "ghost", "s1",         "%00",  "1.0",    "instances" };
static const char *const queries[]
    = { NULL,        "recursion=1",    "recursion=9",  "force", "timeout=-5",
        "timeout=0", "type=lifecycle", "type=x",       "a=%",   "=",
        "&&",        "force=maybe",    "recursion=%31" };
static const char *const keys[]
    = { "name",    "source",      "type",   "image",   "config",   "limits.cpu", "limits.memory",
        "command", "environment", "action", "timeout", "force",    "stateful",   "subnet",
        "mode",    "vlan",        "mtu",    "x",       "root.size" };
static const char *const strings[]
    = { "",    "x",         "nosuch-image",    "nat",   "start",     "stop",   "restart", "1", "-1",
        "64M", "container", "virtual-machine", "image", "bad name!", "9999999" };

static void
random_value (char *buf, size_t cap, int depth)
{
  size_t n = strlen (buf);
  switch (next (depth > 2 ? 4 : 6))
    {
    case 0:
      snprintf (buf + n, cap - n, "\"%s\"", strings[next (sizeof strings / sizeof *strings)]);
      break;
    case 1:
      snprintf (buf + n, cap - n, "%d", (int)next (5000) - 100);
      break;
    case 2:
      snprintf (buf + n, cap - n, "%s", next (2) ? "true" : "null");
      break;
    case 3:
      snprintf (buf + n, cap - n, "1.5");
      break;
    case 4:
      {
        int k = (int)next (4);
        snprintf (buf + n, cap - n, "[");
        for (int i = 0; i < k; i++)
          {
            if (i)
              strncat (buf, ",", cap - strlen (buf) - 1);
            random_value (buf, cap, depth + 1);
          }
        strncat (buf, "]", cap - strlen (buf) - 1);
        break;
      }
    default:
      {
        int k = (int)next (4);
        snprintf (buf + n, cap - n, "{");
        for (int i = 0; i < k; i++)
          {
            size_t m = strlen (buf);
            snprintf (buf + m, cap - m, "%s\"%s\":", i ? "," : "",
                      keys[next (sizeof keys / sizeof *keys)]);
            random_value (buf, cap, depth + 1);
          }
        strncat (buf, "}", cap - strlen (buf) - 1);
      }
    }
}

static void
test_random_requests (void **state)
{
  static const char *const methods[] = { "GET", "POST", "PUT", "PATCH", "DELETE", "FOO" };
  struct fixture *f = *state;

  for (int i = 0; i < 5000; i++)
    {
      char path[256] = "", body[2048] = "";
      const char *method = methods[next (6)];
      int depth = (int)next (6);
      json_t *j = NULL;
      int status;

      size_t n_routes = 0;
      while (cl_api_route (n_routes))
        n_routes++;
      if (next (4))
        {
          /* a real route (its method, mostly), its parameters random */
          const struct cl_api_route_info *r = cl_api_route (next ((unsigned)n_routes));
          if (next (4))
            method = r->method;
          for (const char *p = r->path; *p;)
            if (*p == '{')
              {
                strncat (path, segments[next (sizeof segments / sizeof *segments)],
                         sizeof path - strlen (path) - 1);
                p = strchr (p, '}') + 1;
              }
            else
              {
                size_t m = strlen (path);
                if (m + 1 < sizeof path)
                  path[m] = *p, path[m + 1] = '\0';
                p++;
              }
        }
      else
        for (int d = 0; d < depth; d++)
          {
            strncat (path, "/", sizeof path - strlen (path) - 1);
            strncat (path, segments[next (sizeof segments / sizeof *segments)],
                     sizeof path - strlen (path) - 1);
          }
      /* networks act on the host's network namespace: they are for the
         integration tests, which give the daemon a namespace of its own */
      if (strstr (path, "networks"))
        continue;
      if (next (4))
        random_value (body, sizeof body, 0);
      if (next (8) == 0)
        body[next ((unsigned)strlen (body) + 1)] = '\0'; /* cut */
      status = call (f->ctx, method, path[0] ? path : "/",
                     queries[next (sizeof queries / sizeof *queries)], body[0] ? body : NULL, &j);
      assert_true (status >= 200 && status < 600);
      /* a JSON envelope, except the event stream */
      if (j == NULL)
        assert_true (status == 200);
      else if (status >= 400)
        assert_int_equal (json_integer_value (json_object_get (j, "error_code")), status);
      /* what a random request may never do: make an operation */
      assert_int_not_equal (status, 202);
      json_decref (j);
    }
}

/* A library error's status comes from its kind, set where it was
   raised, and survives the context added on the way up. */
/* The websocket mask (word at a time, then the tail) is the byte-wise
   XOR of RFC 6455 at every length and offset, and undoes itself. */
static void
test_ws_mask_matches_the_rfc (void **state)
{
  const unsigned char mask[4] = { 0x12, 0x9a, 0x00, 0xff };
  char buf[64], want[64];
  (void)state;

  for (size_t n = 0; n <= 40; n++)
    for (size_t off = 0; off < 3; off++)
      {
        for (size_t i = 0; i < sizeof buf; i++)
          buf[i] = want[i] = (char)(i * 7 + 1);
        for (size_t i = 0; i < n; i++)
          want[off + i] ^= (char)mask[i % 4];
        cl_api_ws_mask (buf + off, n, mask);
        assert_memory_equal (buf, want, sizeof buf);
        cl_api_ws_mask (buf + off, n, mask);
        for (size_t i = 0; i < sizeof buf; i++)
          assert_int_equal (buf[i], (char)(i * 7 + 1));
      }
}

static void
test_error_kinds_give_statuses (void **state)
{
  static const struct
  {
    enum cl_error_kind kind;
    int status;
  } cases[] = {
    { CL_ERR_NOT_FOUND, 404 }, { CL_ERR_CONFLICT, 409 }, { CL_ERR_INVALID, 400 },
    { CL_ERR_BUSY, 503 },      { CL_ERR_FAILED, 500 },
  };
  (void)state;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    {
      cl_error_t err = NULL;
      assert_int_equal (cl_error_raise (&err, cases[i].kind, "thing `%zu` went wrong", i), -1);
      cl_error_wrap (&err, "while doing it");
      assert_int_equal (cl_api_error_status (err), cases[i].status);
      cl_error_release (&err);
    }
  /* errno errors are failures unless given a kind */
  {
    cl_error_t err = NULL;
    cl_error_make (&err, 16, "lock");
    assert_int_equal (cl_api_error_status (err), 500);
    cl_error_set_kind (&err, CL_ERR_BUSY);
    assert_int_equal (cl_api_error_status (err), 503);
    cl_error_release (&err);
  }
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_error_kinds_give_statuses),
    cmocka_unit_test_setup_teardown (test_server_and_routes, setup, teardown),
    cmocka_unit_test_setup_teardown (test_bad_input_names_the_field, setup, teardown),
    cmocka_unit_test_setup_teardown (test_body_limit, setup, teardown),
    cmocka_unit_test_setup_teardown (test_operation_failure_is_recorded, setup, teardown),
    cmocka_unit_test_setup_teardown (test_interrupted_operation_marked_failed, setup, teardown),
    cmocka_unit_test_setup_teardown (test_random_requests, setup, teardown),
    cmocka_unit_test (test_ws_mask_matches_the_rfc),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
