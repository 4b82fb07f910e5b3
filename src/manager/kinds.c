/* Which table of operations an instance's kind uses (internal.h): the
   one place that knows every kind, above them all. */
#include "manager/internal.h"

const struct instance_ops *
instance_ops (const struct instance *inst)
{
  return inst->kind == KIND_VM ? &vm_ops : &container_ops;
}
