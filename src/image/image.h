/* SPDX-License-Identifier: Apache-2.0 */
/* The image store: content-addressed blobs (sha256) and unpacked layers
   shared between images, under the state root:

     ROOT/images/blobs/sha256/HEX     manifests, configs, layer archives
     ROOT/images/layers/HEX/          one layer unpacked (HEX: its blob digest)
     ROOT/images/tmp/                 staging; renamed into place when whole
     ROOT/cloison.db                  tables image_*, shared with the others

   Layers keep OCI whiteouts in overlayfs form (a 0/0 character device for
   `.wh.NAME`, the xattr trusted.overlay.opaque=y for `.wh..wh..opq`), so
   that an instance is one overlayfs mount over the layer directories, with
   nothing copied: see cl_img_lowerdir().

   An image is named by its id (hex sha256 of its config), by NAME[:TAG]
   (TAG defaults to "latest"), or by a unique prefix of its id (at least
   4 hex digits, "sha256:" allowed in front). */
#ifndef CLOISON_IMAGE_H
#define CLOISON_IMAGE_H

#include "common/error.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

struct cl_image_store;

/* The runtime part of an image's config (OCI image config "config"). */
struct cl_image_config
{
  char **env;        /* NULL-terminated "K=V" list (never NULL) */
  char **entrypoint; /* NULL-terminated, or NULL when unset */
  char **cmd;        /* NULL-terminated, or NULL when unset */
  char *working_dir; /* NULL when unset */
  char *user;        /* NULL when unset ("uid[:gid]" or a name) */
};

struct cl_image
{
  char *id;     /* hex sha256 of the config blob (64 characters) */
  char *name;   /* the NAME[:TAG] it was resolved by, or the first of its
                   names, or NULL for an unnamed image */
  int64_t created;      /* seconds since the epoch, when imported */
  uint64_t size;        /* bytes of unpacked layers */
  struct cl_image_config config;
  size_t n_layers;
  char **layers;        /* unpacked layer directories, BOTTOM FIRST */
};

/* Opens (creating) the store under `root` (see cl_state_root).  The
   built-in `busybox` image is imported the first time a store is opened.
   The _with_db form shares an open state database (not closed by
   cl_img_store_close) so that callers can mix image calls into their own
   transactions. */
int cl_img_store_open (const char *root, struct cl_image_store **out, cl_error_t *err);
int cl_img_store_open_with_db (const char *root, sqlite3 *db, struct cl_image_store **out,
                               cl_error_t *err);
void cl_img_store_close (struct cl_image_store *store);
const char *cl_img_store_root (struct cl_image_store *store);

/* Resolves a reference to an image.  Errors: "image `REF` not found",
   "image reference `REF`: ambiguous id prefix". */
int cl_img_resolve (struct cl_image_store *store, const char *ref, struct cl_image **out,
                    cl_error_t *err);
void cl_img_free (struct cl_image *image);

/* An image another cloison sent with an instance it moves here
   (docs/move.md): dir holds `config` (the config blob's bytes: its sha256
   is the id, the same as the sender's) and layers/HEX/ (the unpacked
   layers, HEX their store digests), `layers` their order, lowest first,
   NULL-terminated.  Layers already here are used as they are; the others
   are renamed in.  The image gets no name. */
int cl_img_receive (struct cl_image_store *s, const char *dir, char **layers, char **id_out,
                    cl_error_t *err);

/* "TOP:...:BOTTOM", the overlayfs lowerdir= value for the image (caller
   frees).  Overlayfs needs at least two lower dirs without an upper one;
   with an upper dir (instances) one is fine. */
char *cl_img_lowerdir (const struct cl_image *image);

/* Use records: while an image has a use, `image rm` refuses with
   "image `REF` is used by instance `USER`".  `user` names the user (an
   instance name).  Recording twice is harmless; releasing an absent use is
   not an error. */
int cl_img_use (struct cl_image_store *store, const char *image_id, const char *user,
                cl_error_t *err);
int cl_img_release (struct cl_image_store *store, const char *image_id, const char *user,
                    cl_error_t *err);

/* Removes a name (NAME[:TAG]) or, given an id, the whole image; blobs and
   layers no longer referenced by any image are deleted.  Refused while used. */
int cl_img_remove (struct cl_image_store *store, const char *ref, cl_error_t *err);

/* Progress of a long operation (import, pull): `what` names the item
   ("sha256:ab12...", "layer 2/3"), done/total in bytes (total 0 when
   unknown).  `finished` is 1 on the last call for an item. */
typedef void (*cl_image_progress_fn) (void *opaque, const char *what, uint64_t done,
                                      uint64_t total, int finished);

struct cl_image_import_opts
{
  const char *name; /* NAME[:TAG] to give the image, or NULL */
  cl_image_progress_fn progress;
  void *progress_opaque;
};

/* Imports PATH: an OCI image layout directory, an OCI archive (tar of a
   layout, as `podman save --format oci-archive`), a docker-archive
   (`podman save --format docker-archive`), or a plain rootfs tarball
   (optionally gzip/zstd/xz compressed).  With no name, an OCI layout's
   org.opencontainers.image.ref.name or a docker-archive's RepoTags give
   one.  *image_id (optional) receives the new image's id. */
int cl_img_import (struct cl_image_store *store, const char *path,
                   const struct cl_image_import_opts *opts, char **image_id, cl_error_t *err);

struct cl_image_pull_opts
{
  const char *name;     /* local NAME[:TAG]; default: the reference itself */
  const char *username; /* basic auth or token exchange; NULL: anonymous */
  const char *password;
  int insecure;         /* plain HTTP for any registry (always for localhost) */
  const char *platform; /* "os/arch"; default "linux/amd64" */
  cl_image_progress_fn progress;
  void *progress_opaque;
  const char *ca_file;  /* PEM CAs to trust; implies HTTPS, even for localhost */
};

/* Pulls REF ([REGISTRY/]REPO[:TAG|@sha256:HEX]) over the OCI distribution
   API.  Image indexes / manifest lists pick opts->platform. */
int cl_img_pull (struct cl_image_store *store, const char *ref,
                 const struct cl_image_pull_opts *opts, char **image_id, cl_error_t *err);

/* One row per image; names NULL-terminated (maybe empty). */
struct cl_image_info
{
  char *id;
  char **names;
  int64_t created;
  uint64_t size;
  size_t n_layers;
  size_t n_uses;
};
int cl_img_list (struct cl_image_store *store, struct cl_image_info **out, size_t *n,
                 cl_error_t *err);
void cl_img_info_free (struct cl_image_info *infos, size_t n);

/* The full description printed by `image inspect` (caller frees, JSON). */
int cl_img_inspect_json (struct cl_image_store *store, const char *ref, char **json_out,
                         cl_error_t *err);

/* ---- VM images ---------------------------------------------------------
   The built-in VM pieces: a Debian cloud kernel and our initramfs (busybox,
   the virtio/ext4 modules, an init that mounts /dev/vda and switch_roots).
   Paths to files that exist, or an error saying how to build them. */
int cl_img_vm_kernel (const char **path, cl_error_t *err);
int cl_img_vm_initramfs (const char **path, cl_error_t *err);

/* Builds an ext4 disk image at `out_path` (must not exist; written to a
   temporary then renamed) holding the merged rootfs of `image`, of
   `size_bytes` (0: the rootfs size plus headroom, at least 64 MiB), with
   `mkfs.ext4 -d`. */
int cl_img_build_vm_disk (struct cl_image_store *store, const struct cl_image *image,
                          const char *out_path, uint64_t size_bytes, cl_error_t *err);

/* ---- references (exported for the CLI and the tests) ------------------- */

struct cl_image_ref
{
  char *registry; /* "localhost:5000", "docker.io"; NULL when not given */
  char *repo;     /* "library/busybox", "busybox" */
  char *tag;      /* "latest" when neither tag nor digest was given */
  char *digest;   /* "sha256:HEX" or NULL */
};

/* Parses [REGISTRY/]REPO[:TAG][@DIGEST].  A first component with a '.' or
   ':' or equal to "localhost" is a registry.  Errors name the reference
   and what is wrong with it. */
int cl_img_ref_parse (const char *s, struct cl_image_ref *out, cl_error_t *err);
void cl_img_ref_clear (struct cl_image_ref *ref);
/* Checks a local NAME[:TAG] as given to import/pull --name and splits it
   (*name, *tag allocated; tag defaults to "latest"). */
int cl_img_name_parse (const char *s, char **name, char **tag, cl_error_t *err);

#endif
