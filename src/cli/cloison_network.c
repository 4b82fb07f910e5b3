/* cloison network commands (to be built in the network issue). */
#include "cli/cloison.h"

#include <stddef.h>

const struct cloison_cmd cloison_network_cmds[] = {
  { NULL, NULL, NULL },
};
