/* cloison image commands (to be built in the image issue). */
#include "cli/cloison.h"

#include <stddef.h>

const struct cloison_cmd cloison_image_cmds[] = {
  { NULL, NULL, NULL },
};
