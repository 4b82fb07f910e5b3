/* SPDX-License-Identifier: Apache-2.0 */
/* process.capabilities with libcap.  Setting the sets happens in two steps
   around setuid (see caps.h): the bounding set can only shrink while
   CAP_SETPCAP is still effective, and PR_SET_KEEPCAPS keeps the permitted
   set across the uid change so that step 2 can choose it exactly. */
#include "container/caps.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>

static const char *const cap_set_names[]
    = { "bounding", "effective", "inheritable", "permitted", "ambient" };
enum
{
  SET_BOUNDING,
  SET_EFFECTIVE,
  SET_INHERITABLE,
  SET_PERMITTED,
  SET_AMBIENT,
  N_SETS
};

/* One bit per capability, per set. */
struct cap_sets
{
  uint64_t bits[N_SETS];
};

/* "CAP_SYS_ADMIN" -> its number.  libcap only knows lower-case names and
   also accepts bare numbers, which the spec does not. */
static int
cap_parse_name (const char *name, cap_value_t *out)
{
  char lower[64];
  size_t i;

  if (strncmp (name, "CAP_", 4) != 0 || strlen (name) >= sizeof lower)
    return -1;
  for (i = 0; name[i]; i++)
    lower[i] = tolower ((unsigned char)name[i]);
  lower[i] = '\0';
  if (cap_from_name (lower, out) < 0 || *out < 0 || *out > 63)
    return -1;
  return 0;
}

static int
caps_read (json_t *capabilities, struct cap_sets *sets, cl_error_t *err)
{
  memset (sets, 0, sizeof *sets);
  if (capabilities == NULL)
    return 0;
  if (!json_is_object (capabilities))
    return cl_error_make (err, 0, "process.capabilities: expected an object");
  for (int s = 0; s < N_SETS; s++)
    {
      const char **names = NULL;
      size_t n = 0;
      int r = cl_json_string_array (capabilities, "process.capabilities", cap_set_names[s], &names,
                                    &n, err);
      if (r < 0)
        return -1;
      for (size_t i = 0; i < n; i++)
        {
          cap_value_t v;
          if (cap_parse_name (names[i], &v) < 0)
            {
              cl_error_make (err, 0, "process.capabilities.%s[%zu]: unknown capability `%s`",
                             cap_set_names[s], i, names[i]);
              free (names);
              return -1;
            }
          sets->bits[s] |= 1ULL << v;
        }
      free (names);
    }
  return 0;
}

/* 21 -> "CAP_SYS_ADMIN", the spelling of the spec, for messages. */
static void
cap_display_name (int c, char *buf, size_t size)
{
  char *name = cap_to_name (c);
  size_t i;
  for (i = 0; name && name[i] && i + 1 < size; i++)
    buf[i] = toupper ((unsigned char)name[i]);
  buf[i] = '\0';
  cap_free (name);
}

/* The kernel raises an ambient capability only if it is also permitted
   and inheritable.  runc 1.1 and crun skip the others (runc's own default
   spec lists CAP_KILL etc. as ambient but not inheritable): so do we. */
static uint64_t
ambient_raisable (const struct cap_sets *sets)
{
  return sets->bits[SET_AMBIENT] & sets->bits[SET_PERMITTED] & sets->bits[SET_INHERITABLE];
}

int
cl_ctr_caps_validate (json_t *capabilities, cl_error_t *err)
{
  struct cap_sets sets;
  uint64_t skipped;
  if (caps_read (capabilities, &sets, err) < 0)
    return -1;
  skipped = sets.bits[SET_AMBIENT] & ~ambient_raisable (&sets);
  if (skipped)
    {
      char names[1024] = "";
      size_t len = 0;
      for (int c = 0; c < 64 && len < sizeof names - 64; c++)
        if (skipped & (1ULL << c))
          {
            char name[64];
            cap_display_name (c, name, sizeof name);
            len += (size_t)snprintf (names + len, sizeof names - len, "%s%s", len ? ", " : "",
                                     name);
          }
      cl_warn ("process.capabilities.ambient: %s not also permitted and inheritable: not raised "
               "(as runc and crun)",
               names);
    }
  return 0;
}

/* Highest capability the running kernel knows.  Names newer than the kernel
   are accepted and ignored, as runc does. */
static int
caps_last (void)
{
  int last = cap_max_bits () - 1;
  return last > 63 ? 63 : last;
}

int
cl_ctr_caps_drop_bounding (json_t *capabilities, cl_error_t *err)
{
  struct cap_sets sets;
  int last = caps_last ();

  if (capabilities == NULL)
    return 0;
  if (caps_read (capabilities, &sets, err) < 0)
    return -1;
  for (int c = 0; c <= last; c++)
    {
      if (sets.bits[SET_BOUNDING] & (1ULL << c))
        continue;
      /* Drop first, ask only on failure (one system call per capability
         instead of two): dropping one already gone fails only without
         CAP_SETPCAP, and is then no error. */
      if (prctl (PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && prctl (PR_CAPBSET_READ, c, 0, 0, 0) > 0)
        {
          char name[64];
          cap_display_name (c, name, sizeof name);
          return cl_error_errno (err, "process.capabilities.bounding: drop `%s`", name);
        }
    }
  if (prctl (PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
    return cl_error_errno (err, "prctl PR_SET_KEEPCAPS");
  return 0;
}

int
cl_ctr_caps_apply (json_t *capabilities, cl_error_t *err)
{
  static const struct
  {
    int set;
    cap_flag_t flag;
  } flags[] = { { SET_EFFECTIVE, CAP_EFFECTIVE },
                { SET_PERMITTED, CAP_PERMITTED },
                { SET_INHERITABLE, CAP_INHERITABLE } };
  struct cap_sets sets;
  int last = caps_last ();
  cap_t caps;

  if (capabilities == NULL)
    return 0;
  if (caps_read (capabilities, &sets, err) < 0)
    return -1;
  caps = cap_init ();
  if (caps == NULL)
    return cl_error_errno (err, "cap_init");
  for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++)
    for (cap_value_t c = 0; c <= last; c++)
      if (sets.bits[flags[f].set] & (1ULL << c))
        cap_set_flag (caps, flags[f].flag, 1, &c, CAP_SET);
  if (cap_set_proc (caps) < 0)
    {
      cap_free (caps);
      return cl_error_errno (err, "process.capabilities: set effective, permitted and inheritable");
    }
  cap_free (caps);

  if (prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    return cl_error_errno (err, "process.capabilities.ambient: clear");
  for (int c = 0; c <= last; c++)
    if ((ambient_raisable (&sets) & (1ULL << c))
        && prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
      {
        char name[64];
        cap_display_name (c, name, sizeof name);
        return cl_error_errno (err, "process.capabilities.ambient: raise `%s`", name);
      }
  if (prctl (PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
    return cl_error_errno (err, "prctl PR_SET_KEEPCAPS");
  return 0;
}
