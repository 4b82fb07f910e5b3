/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between the files of src/image; not part of the public API. */
#ifndef CLOISON_IMAGE_INTERNAL_H
#define CLOISON_IMAGE_INTERNAL_H

#include "image/image.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>

#define CL_SHA256_HEX_LEN 64

struct cl_image_store
{
  char *root;       /* state root */
  char *dir;        /* ROOT/images */
  sqlite3 *db;
  bool own_db;
  int lock_fd; /* ROOT/images/lock: shared while importing, exclusive
                  while removing, so that a removal never deletes a layer
                  that an import is about to reference */
  /* Imports the built-in image NAME again when NAME:latest is looked up
     and missing (set by the opens of builtin.c; NULL: none).  1 imported,
     0 when NAME is no built-in, -1 on error. */
  int (*import_builtin) (struct cl_image_store *s, const char *name, cl_error_t *err);
};

/* ---- digest.c ---- */
struct cl_sha256
{
  EVP_MD_CTX *ctx;
};
void cl_img_sha256_init (struct cl_sha256 *h);
void cl_img_sha256_update (struct cl_sha256 *h, const void *data, size_t len);
/* Writes 64 hex digits + NUL into hex and frees the context. */
void cl_img_sha256_final_hex (struct cl_sha256 *h, char hex[CL_SHA256_HEX_LEN + 1]);
void cl_img_sha256_buffer_hex (const void *data, size_t len, char hex[CL_SHA256_HEX_LEN + 1]);
int cl_img_sha256_file_hex (const char *path, char hex[CL_SHA256_HEX_LEN + 1], cl_error_t *err);
/* "sha256:HEX" -> hex (64 lowercase digits).  `what` names the field. */
int cl_img_digest_parse (const char *digest, const char *what, char hex[CL_SHA256_HEX_LEN + 1],
                         cl_error_t *err);
bool cl_img_digest_is_hex (const char *s, size_t len);
/* The error for a blob whose content does not match its digest. */
int cl_img_digest_mismatch (const char *expected_hex, const char *actual_hex, cl_error_t *err);

/* ---- img_store.c ---- */
/* Opens (creating) the store under root, importing nothing (the public
   opens are in builtin.c). */
int cl_img_store_open_internal (const char *root, sqlite3 *db, struct cl_image_store **out,
                                cl_error_t *err);
/* ROOT/images/blobs/sha256/HEX, ROOT/images/layers/HEX (caller frees). */
char *cl_img_store_blob_path (struct cl_image_store *s, const char *hex);
char *cl_img_store_layer_path (struct cl_image_store *s, const char *hex);
/* ROOT/images/tmp/WHAT-PID-XXXXXX, a template for mkstemp/mkdtemp. */
char *cl_img_store_tmp_name (struct cl_image_store *s, const char *what);
/* A fresh staging directory under ROOT/images/tmp (caller frees and
   removes it). */
int cl_img_store_mkstage (struct cl_image_store *s, const char *what, char **out, cl_error_t *err);
/* Stores data as a blob named by its sha256 (atomic).  hex_out optional. */
int cl_img_store_put_blob (struct cl_image_store *s, const void *data, size_t len,
                           char hex_out[CL_SHA256_HEX_LEN + 1], cl_error_t *err);

/* An import being assembled: layers landed in the store so far, removed
   again (when no other image uses them) if the import fails. */
struct cl_image_build
{
  struct cl_image_store *store;
  char **layers; /* blob hex digests, bottom first */
  size_t n_layers;
  char **created; /* layers this import unpacked */
  size_t n_created;
  cl_image_progress_fn progress;
  void *progress_opaque;
};
void cl_img_build_init (struct cl_image_build *b, struct cl_image_store *s,
                        cl_image_progress_fn progress, void *opaque);
/* Unpacks the layer archive at `path` (if not already in the store) after
   checking its sha256 against expected_hex (NULL: computed, for plain
   rootfs tarballs).  Appends it to b->layers; *hex_out (optional) gets the
   digest. */
int cl_img_build_add_layer (struct cl_image_build *b, const char *path, const char *expected_hex,
                            char hex_out[CL_SHA256_HEX_LEN + 1], cl_error_t *err);
/* Records the image (config blob bytes, optional manifest bytes) with its
   layers and name; ends the build.  On failure the caller calls
   cl_img_build_abort. */
int cl_img_build_commit (struct cl_image_build *b, const char *config, size_t config_len,
                         const char *manifest, size_t manifest_len, const char *name,
                         const char *source, char **id_out, cl_error_t *err);
void cl_img_build_abort (struct cl_image_build *b);
bool cl_img_store_image_exists (struct cl_image_store *s, const char *id);

/* ---- layer.c ---- */
/* Unpacks the tar (any compression) read from fd into the empty directory
   dir, turning OCI whiteouts into overlayfs ones.  Hashes every byte of
   the fd into hash (optional); *unpacked (optional) gets the bytes of
   regular files.  progress gets the bytes read. */
int cl_img_layer_unpack (int fd, const char *dir, struct cl_sha256 *hash, uint64_t *unpacked,
                         cl_image_progress_fn progress, void *opaque, const char *what,
                         uint64_t total, cl_error_t *err);

/* ---- import.c ---- */
/* Imports an OCI layout directory (shared with pull's tests). */
int cl_img_import_oci_dir (struct cl_image_store *s, const char *dir,
                           const struct cl_image_import_opts *opts, char **id_out, cl_error_t *err);
/* From an image index or manifest list, the manifest for platform
   "os/arch" (borrowed from index). */
int cl_img_index_pick (json_t *index, const char *ctx, const char *platform, json_t **out,
                       cl_error_t *err);
bool cl_img_media_type_is_index (const char *mt);
/* Imports a plain rootfs tarball as a one-layer image named `name`
   (NULL: none); `source` is recorded ("import", "builtin"). */
int cl_img_import_rootfs_tar (struct cl_image_store *s, const char *path, const char *name,
                              const char *source, const struct cl_image_import_opts *opts,
                              char **id_out, cl_error_t *err);

/* ---- builtin.c ---- */
/* FILE in the built-in images' data folder (busybox rootfs tarball, VM
   kernel...; see common/paths.h), allocated. */
char *cl_img_data_path (const char *file);

#endif
