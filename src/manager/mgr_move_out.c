/* SPDX-License-Identifier: Apache-2.0 */
/* The source's side of a move (docs/move.md): an intent "move-out" that
   the mover (the API's move operation) keeps while it works, and whose
   stage tells the recovery what to do when the mover's process died
   midway.  The intent is added and changed under the instance's lock,
   as every intent is; the steps between (stop, checkpoint, migrate,
   delete) take it themselves. */
#include "common/cleanup.h"
#include "common/log.h"
#include "manager/mgr_internal.h"

#include <string.h>

static int
locked_stage (struct cl_manager *m, const char *name, int64_t *id, const char *stage,
              cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };

  if (cl_mgr_instance_lock (m, name, &lock, err) < 0)
    return -1;
  if (*id == 0)
    return cl_mgr_intent_begin (m, "move-out", name, stage, id, err);
  return cl_mgr_intent_set_arg (m, *id, stage, err);
}

int
cl_mgr_move_out_begin (struct cl_manager *m, const char *name, int64_t *id, cl_error_t *err)
{
  *id = 0;
  return locked_stage (m, name, id, CL_MGR_MOVE_HERE, err);
}

int
cl_mgr_move_out_stage (struct cl_manager *m, const char *name, int64_t id, const char *stage,
                       cl_error_t *err)
{
  return locked_stage (m, name, &id, stage, err);
}

void
cl_mgr_move_out_end (struct cl_manager *m, const char *name, int64_t id)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  cl_error_t ignored = NULL;

  /* without the lock (it stayed busy 2 minutes), the intent still goes:
     its owner is alive, so no recovery acts on it meanwhile */
  if (cl_mgr_instance_lock (m, name, &lock, &ignored) < 0)
    cl_error_release (&ignored);
  cl_mgr_intent_abandon (m, id);
}

int
cl_mgr_move_out_recover (struct cl_manager *m, const char *name, const char *stage, int64_t id,
                         cl_error_t *err)
{
  cleanup_instance struct instance *inst = NULL;
  cl_error_t why = NULL;

  /* gone: the move had ended (deleted here) */
  if (cl_mgr_instance_load (m, name, &inst, &why) < 0)
    {
      cl_error_release (&why);
      return cl_mgr_intent_end (m, id, err);
    }
  if (stage && strcmp (stage, CL_MGR_MOVE_STOPPED) == 0 && !cl_mgr_instance_is_running (inst)
      && strcmp (inst->status, "stopped") == 0)
    {
      /* stopped (or checkpointed) for the move, and no copy runs
         elsewhere: it runs here again (a checkpoint restores) */
      const struct start_opts o = { .incoming_fd = -1 };
      if (cl_mgr_instance_start_locked (m, name, &o, &why) < 0)
        {
          cl_warn ("move of `%s` interrupted: could not start it again here: %s", name, why->msg);
          cl_error_release (&why);
        }
    }
  else if (stage && strcmp (stage, CL_MGR_MOVE_HANDED) == 0)
    cl_warn ("move of `%s` interrupted after it was handed to its destination: left as it is"
             " here (%s); see where it runs before starting or deleting it",
             name, cl_mgr_instance_is_running (inst) ? "running" : "stopped");
  return cl_mgr_intent_end (m, id, err);
}
