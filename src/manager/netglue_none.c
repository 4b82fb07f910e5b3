/* Networking when src/net is not built in: instances get a network
   namespace with only `lo`; asking for a network is an error. */
#include "common/util.h"
#include "manager/internal.h"
#include "manager/netglue.h"

#include <stdlib.h>
#include <string.h>

int
netglue_check_port (const char *spec, cl_error_t *err)
{
  unsigned long host, port;
  char *end;

  host = strtoul (spec, &end, 10);
  if (end == spec || *end != ':' || host == 0 || host > 65535)
    return cl_error_make (err, 0, "-p `%s`: expected HOSTPORT:PORT[/tcp|udp]", spec);
  port = strtoul (end + 1, &end, 10);
  if (port == 0 || port > 65535 || (*end && strcmp (end, "/tcp") != 0 && strcmp (end, "/udp") != 0))
    return cl_error_make (err, 0, "-p `%s`: expected HOSTPORT:PORT[/tcp|udp]", spec);
  return 0;
}

static bool
wants_network (struct instance *inst)
{
  return json_array_size (json_object_get (inst->config, "networks")) > 0
         || json_array_size (json_object_get (inst->config, "ports")) > 0;
}

bool
netglue_wanted (struct instance *inst)
{
  return wants_network (inst);
}

int
netglue_cleanup (struct cl_manager *m, char **names, cl_error_t *err)
{
  (void)m, (void)names, (void)err;
  return 0;
}

int
netglue_attach_container (struct cl_manager *m, struct instance *inst, pid_t pid, cl_error_t *err)
{
  (void)m, (void)pid;
  if (wants_network (inst))
    return cl_error_make (err, 0, "networks are not built in (no src/net)");
  return 0;
}

int
netglue_attach_vm (struct cl_manager *m, struct instance *inst, char **tap, uint8_t mac[6],
                   bool *has_mac, cl_error_t *err)
{
  (void)m, (void)mac;
  *tap = NULL;
  *has_mac = false;
  if (wants_network (inst))
    return cl_error_make (err, 0, "networks are not built in (no src/net)");
  return 0;
}

int
netglue_detach (struct cl_manager *m, const char *name, cl_error_t *err)
{
  (void)m, (void)name, (void)err;
  return 0;
}

json_t *
netglue_info (struct cl_manager *m, const char *name)
{
  (void)m, (void)name;
  return json_null ();
}
