/* cloison instance commands (to be built in the instance issue). */
#include "cli/cloison.h"

#include <stddef.h>

const struct cloison_cmd cloison_instance_cmds[] = {
  { NULL, NULL, NULL },
};
