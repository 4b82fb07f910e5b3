/* SPDX-License-Identifier: Apache-2.0 */
#include "common/paths.h"
#include "common/util.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Set by meson.build from the install options. */
#ifndef CLOISON_PREFIX
#error "CLOISON_PREFIX, CLOISON_BINDIR, CLOISON_LIBEXECDIR and CLOISON_DATADIR come from meson"
#endif

struct piece
{
  const char *dir;  /* relative to the prefix, or absolute */
  const char *name; /* NULL: the directory itself */
#ifdef CLOISON_BUILD_ROOT
  const char *env;       /* overrides everything */
  const char *build_rel; /* in the build tree */
#endif
};

#ifdef CLOISON_BUILD_ROOT
#define BUILD_TREE(e, rel) , .env = e, .build_rel = rel
#else
#define BUILD_TREE(e, rel)
#endif

static const struct piece pieces[] = {
  [CL_PIECE_MONITOR]
  = { .dir = CLOISON_LIBEXECDIR,
      .name = "cloison-monitor" BUILD_TREE ("CLOISON_MONITOR", "src/manager/cloison-monitor") },
  [CL_PIECE_IMAGE_DATA]
  = { .dir = CLOISON_DATADIR, .name = NULL BUILD_TREE ("CLOISON_IMAGE_DATA", "src/image") },
  [CL_PIECE_VMCTR]
  = { .dir = CLOISON_LIBEXECDIR,
      .name = "cloison-vmctr" BUILD_TREE ("CLOISON_VMCTR", "src/manager/cloison-vmctr") },
  [CL_PIECE_UI] = { .dir = CLOISON_DATADIR, .name = "ui" BUILD_TREE ("CLOISON_UI_DATA", "ui") },
  [CL_PIECE_VMMON]
  = { .dir = CLOISON_LIBEXECDIR,
      .name = "cloison-vmmon" BUILD_TREE ("CLOISON_VMMON", "src/manager/cloison-vmmon") },
  [CL_PIECE_PROJECT]
  = { .dir = CLOISON_LIBEXECDIR,
      .name = "cloison-project" BUILD_TREE ("CLOISON_PROJECT", "src/manager/cloison-project") },
};

/* The prefix we run from, if our executable is in PREFIX/bindir. */
static bool
prefix_of_self (char *buf, size_t size)
{
  size_t blen = strlen (CLOISON_BINDIR);
  ssize_t n = readlink ("/proc/self/exe", buf, size - 1);
  char *slash;

  if (n <= 0 || CLOISON_BINDIR[0] == '/')
    return false;
  buf[n] = '\0';
  slash = strrchr (buf, '/');
  if (slash == NULL)
    return false;
  *slash = '\0';
  n = slash - buf;
  if ((size_t)n <= blen || buf[n - blen - 1] != '/' || strcmp (buf + n - blen, CLOISON_BINDIR) != 0)
    return false;
  buf[n - blen - 1] = '\0';
  return true;
}

static char *
join (const char *base, const char *dir, const char *name)
{
  return cl_strdup_printf ("%s%s%s%s%s", base ? base : "", base ? "/" : "", dir, name ? "/" : "",
                           name ? name : "");
}

char *
cl_piece_path (enum cl_piece piece)
{
  const struct piece *p = &pieces[piece];
  char self[PATH_MAX];

#ifdef CLOISON_BUILD_ROOT
  const char *env = getenv (p->env);
  if (env && *env)
    return cl_strdup_printf ("%s", env);
  char *built = join (CLOISON_BUILD_ROOT, p->build_rel, NULL);
  if (access (built, F_OK) == 0)
    return built;
  free (built);
#endif
  if (p->dir[0] != '/' && prefix_of_self (self, sizeof self))
    {
      char *mine = join (self, p->dir, p->name);
      if (access (mine, F_OK) == 0)
        return mine;
      free (mine);
    }
  return join (p->dir[0] == '/' ? NULL : CLOISON_PREFIX, p->dir, p->name);
}
