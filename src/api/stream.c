/* SPDX-License-Identifier: Apache-2.0 */
/* GET /1.0/events: the handler that opens a stream of the events kept
   by events.c (which the lower files call to emit, so it answers no
   request itself). */
#include "api/api_internal.h"

void
cl_api_events_get (struct api_call *c)
{
  const char *types = json_string_value (json_object_get (c->query, "type"));
  struct cl_api_events *ev = NULL;
  cl_error_t err = NULL;

  if (cl_api_events_open (c->ctx, types, &ev, &err) < 0)
    {
      cl_api_reply_error (c, 400, "%s", err->msg);
      cl_error_release (&err);
      return;
    }
  cl_api_response_clear (c->resp);
  c->resp->status = 200;
  c->resp->content_type = "application/x-ndjson";
  c->resp->events = ev;
}
