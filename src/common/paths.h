/* SPDX-License-Identifier: Apache-2.0 */
/* Where cloison's own pieces are: helper programs under
   libexecdir/cloison, data under datadir/cloison, as `meson install`
   puts them.  Only a build configured with -Dbuild_tree_paths=true (the
   test build) also looks in its own build tree. */
#ifndef CLOISON_PATHS_H
#define CLOISON_PATHS_H

enum cl_piece
{
  CL_PIECE_MONITOR,    /* the cloison-monitor program */
  CL_PIECE_IMAGE_DATA, /* the folder of the built-in images' files */
  CL_PIECE_VMCTR,      /* cloison-vmctr: VM-isolated containers' host side */
  CL_PIECE_UI,         /* the web console's files */
  CL_PIECE_VMMON,      /* cloison-vmmon: the monitor of a VM instance */
  CL_PIECE_PROJECT,    /* cloison-project: a project verb for the API */
};

/* The path of PIECE (allocated).  Installed: beside our own executable
   when it runs from PREFIX/bindir (so that a tree installed with
   --destdir or moved as a whole finds its own pieces), else the
   configured absolute path.  A build-tree build first takes an override
   from the environment, then the build tree.  Always returns a path, the
   last candidate when none exists: the caller names it in its error. */
char *cl_piece_path (enum cl_piece piece);

#endif
