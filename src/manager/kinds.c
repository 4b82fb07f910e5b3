/* SPDX-License-Identifier: Apache-2.0 */
/* Which table of operations an instance's kind uses (mgr_internal.h): the
   one place that knows every kind, above them all. */
#include "manager/mgr_internal.h"

const struct instance_ops *
cl_mgr_instance_ops (const struct instance *inst)
{
  return inst->kind == KIND_VM ? &vm_ops : &container_ops;
}
