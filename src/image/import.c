/* SPDX-License-Identifier: Apache-2.0 */
/* cloison image import: OCI image layouts (directory or archive),
   docker-archives, plain rootfs tarballs. */
#include "image/img_internal.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_PATH_ENV "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

bool
cl_img_media_type_is_index (const char *mt)
{
  return mt
         && (strcmp (mt, "application/vnd.oci.image.index.v1+json") == 0
             || strcmp (mt, "application/vnd.docker.distribution.manifest.list.v2+json") == 0);
}

static bool
layer_media_type_ok (const char *mt)
{
  static const char *const ok[] = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  };
  if (mt == NULL)
    return true;
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    if (strcmp (mt, ok[i]) == 0)
      return true;
  return false;
}

int
cl_img_index_pick (json_t *index, const char *ctx, const char *platform, json_t **out,
                   cl_error_t *err)
{
  json_t *manifests = NULL, *m;
  size_t i;
  const char *want = platform ? platform : "linux/amd64";
  cleanup_free char *seen = cl_xstrdup ("");

  if (cl_json_array (index, ctx, "manifests", &manifests, err) <= 0)
    return manifests ? -1 : cl_error_make (err, 0, "%s: no `manifests` list", ctx);
  if (json_array_size (manifests) == 0)
    return cl_error_make (err, 0, "%s: empty `manifests` list", ctx);
  json_array_foreach (manifests, i, m)
  {
    json_t *p = json_object_get (m, "platform");
    const char *os = json_string_value (json_object_get (p, "os"));
    const char *arch = json_string_value (json_object_get (p, "architecture"));
    cleanup_free char *both = NULL;
    if (p == NULL && json_array_size (manifests) == 1)
      {
        *out = m;
        return 0;
      }
    if (os == NULL || arch == NULL)
      continue;
    both = cl_strdup_printf ("%s/%s", os, arch);
    if (strcmp (both, want) == 0)
      {
        *out = m;
        return 0;
      }
    {
      char *n = cl_strdup_printf ("%s%s%s", seen, *seen ? ", " : "", both);
      free (seen);
      seen = n;
    }
  }
  return cl_error_make (err, 0, "%s: no manifest for platform %s (has: %s)", ctx, want,
                        *seen ? seen : "none");
}

/* ---- OCI layout ---- */

static bool
image_present (struct cl_image_store *s, const char *config, size_t config_len)
{
  char id[CL_SHA256_HEX_LEN + 1];
  cl_img_sha256_buffer_hex (config, config_len, id);
  return cl_img_store_image_exists (s, id);
}

/* Reads blobs/sha256/HEX of an OCI layout, checking its digest. */
static int
read_layout_blob (const char *dir, const char *digest, const char *what, char **out, size_t *len,
                  cl_error_t *err)
{
  char hex[CL_SHA256_HEX_LEN + 1], actual[CL_SHA256_HEX_LEN + 1];
  cleanup_free char *path = NULL;
  if (cl_img_digest_parse (digest, what, hex, err) < 0)
    return -1;
  path = cl_strdup_printf ("%s/blobs/sha256/%s", dir, hex);
  if (cl_read_file (path, out, len, err) < 0)
    return cl_error_wrap (err, "%s", what);
  cl_img_sha256_buffer_hex (*out, *len, actual);
  if (strcmp (hex, actual) != 0)
    {
      free (*out);
      *out = NULL;
      return cl_img_digest_mismatch (hex, actual, err);
    }
  return 0;
}

/* A default name from a file name: "busybox.tar.gz" -> "busybox". */
static char *
name_from_path (const char *path, const char *tag)
{
  cleanup_free char *copy = cl_xstrdup (path);
  char *base, *dot, *name = NULL, *parsed_tag = NULL, *tagn;
  size_t len = strlen (copy);
  while (len > 1 && copy[len - 1] == '/')
    copy[--len] = '\0';
  base = basename (copy);
  if ((dot = strchr (base, '.')))
    *dot = '\0';
  for (char *p = base; *p; p++)
    if (*p >= 'A' && *p <= 'Z')
      *p += 'a' - 'A';
  tagn = cl_strdup_printf ("%s:%s", base, tag ? tag : "latest");
  if (cl_img_name_parse (tagn, &name, &parsed_tag, NULL) == 0)
    {
      free (name);
      free (parsed_tag);
      return tagn;
    }
  free (tagn);
  return NULL;
}

/* The name an OCI layout gives its manifest, as skopeo, umoci, podman and
   containerd write it. */
static char *
oci_annotated_name (json_t *desc, const char *dir)
{
  json_t *ann = json_object_get (desc, "annotations");
  const char *ctr = json_string_value (json_object_get (ann, "io.containerd.image.name"));
  const char *ref = json_string_value (json_object_get (ann, "org.opencontainers.image.ref.name"));
  if (ctr)
    return cl_xstrdup (ctr);
  if (ref && (strchr (ref, '/') || strchr (ref, ':')))
    return cl_xstrdup (ref);
  if (ref)
    return name_from_path (dir, ref);
  return NULL;
}

static bool
ref_matches_tag (json_t *desc, const char *want_tag)
{
  json_t *ann = json_object_get (desc, "annotations");
  const char *ref = json_string_value (json_object_get (ann, "org.opencontainers.image.ref.name"));
  return ref && want_tag && strcmp (ref, want_tag) == 0;
}

static int
import_oci_manifest (struct cl_image_store *s, const char *dir, const char *manifest_digest,
                     const char *name, const struct cl_image_import_opts *opts, char **id_out,
                     cl_error_t *err)
{
  cleanup_free char *manifest = NULL, *config = NULL, *source = NULL;
  size_t manifest_len, config_len;
  cleanup_json json_t *m = NULL;
  json_t *cfg_desc = NULL, *layers = NULL, *l;
  const char *cfg_digest = NULL;
  struct cl_image_build b;
  size_t i;

  if (read_layout_blob (dir, manifest_digest, "manifest", &manifest, &manifest_len, err) < 0
      || cl_json_load_buffer ("manifest", manifest, manifest_len, &m, err) < 0)
    return -1;
  if (cl_json_object (m, "manifest", "config", &cfg_desc, err) <= 0
      || cl_json_string (cfg_desc, "manifest.config", "digest", &cfg_digest, err) <= 0)
    return cl_error_make (err, 0, "manifest %s: no config digest", manifest_digest);
  if (cl_json_array (m, "manifest", "layers", &layers, err) < 0)
    return -1;
  if (read_layout_blob (dir, cfg_digest, "config", &config, &config_len, err) < 0)
    return -1;
  cl_img_build_init (&b, s, opts ? opts->progress : NULL, opts ? opts->progress_opaque : NULL);
  if (image_present (s, config, config_len))
    layers = NULL; /* already imported: only the name is new */
  json_array_foreach (layers, i, l)
  {
    cleanup_free char *ctx = cl_json_path_index ("manifest.layers", i);
    cleanup_free char *path = NULL;
    const char *digest = NULL, *mt = NULL;
    char hex[CL_SHA256_HEX_LEN + 1];
    if (cl_json_string (l, ctx, "digest", &digest, err) <= 0
        || cl_json_string (l, ctx, "mediaType", &mt, err) < 0)
      {
        if (digest == NULL)
          cl_error_make (err, 0, "%s: no digest", ctx);
        goto fail;
      }
    if (!layer_media_type_ok (mt))
      {
        cl_error_make (err, 0, "%s: unsupported layer media type `%s`", ctx, mt);
        goto fail;
      }
    if (cl_img_digest_parse (digest, ctx, hex, err) < 0)
      goto fail;
    path = cl_strdup_printf ("%s/blobs/sha256/%s", dir, hex);
    if (cl_img_build_add_layer (&b, path, hex, NULL, err) < 0)
      goto fail;
  }
  source = cl_strdup_printf ("oci-layout:%s", dir);
  if (cl_img_build_commit (&b, config, config_len, manifest, manifest_len, name, source, id_out,
                           err)
      < 0)
    goto fail;
  return 0;
fail:
  cl_img_build_abort (&b);
  return -1;
}

int
cl_img_import_oci_dir (struct cl_image_store *s, const char *dir,
                       const struct cl_image_import_opts *opts, char **id_out, cl_error_t *err)
{
  cleanup_free char *index_path = cl_strdup_printf ("%s/index.json", dir);
  cleanup_free char *name = NULL, *want_name = NULL, *want_tag = NULL;
  cleanup_json json_t *index = NULL;
  cleanup_json json_t *nested = NULL;
  json_t *manifests = NULL, *desc = NULL, *m;
  const char *digest = NULL, *mt = NULL;
  size_t i;

  if (opts && opts->name && cl_img_name_parse (opts->name, &want_name, &want_tag, err) < 0)
    return -1;
  if (cl_json_load_file (index_path, &index, err) < 0)
    return -1;
  if (cl_json_array (index, "index.json", "manifests", &manifests, err) <= 0)
    return manifests ? -1 : cl_error_make (err, 0, "`%s`: no `manifests` list", index_path);
  /* Several images in one layout: the one whose ref.name is the tag asked
     for, else the only one, else by platform. */
  json_array_foreach (manifests, i, m) if (ref_matches_tag (m, want_tag)) desc = m;
  if (desc == NULL && json_array_size (manifests) == 1)
    desc = json_array_get (manifests, 0);
  if (desc == NULL && cl_img_index_pick (index, "index.json", NULL, &desc, err) < 0)
    return -1;
  if (cl_json_string (desc, "index.json manifest", "digest", &digest, err) <= 0)
    return cl_error_make (err, 0, "`%s`: manifest without a digest", index_path);
  cl_json_string (desc, "index.json manifest", "mediaType", &mt, NULL);
  name = opts && opts->name ? cl_xstrdup (opts->name) : oci_annotated_name (desc, dir);
  if (cl_img_media_type_is_index (mt))
    {
      cleanup_free char *buf = NULL;
      size_t len;
      if (read_layout_blob (dir, digest, "image index", &buf, &len, err) < 0
          || cl_json_load_buffer ("image index", buf, len, &nested, err) < 0
          || cl_img_index_pick (nested, "image index", NULL, &desc, err) < 0
          || cl_json_string (desc, "image index manifest", "digest", &digest, err) <= 0)
        return -1;
    }
  return import_oci_manifest (s, dir, digest, name, opts, id_out, err);
}

/* ---- docker-archive ---- */

static int
import_docker_dir (struct cl_image_store *s, const char *dir,
                   const struct cl_image_import_opts *opts, char **id_out, cl_error_t *err)
{
  cleanup_free char *manifest_path = cl_strdup_printf ("%s/manifest.json", dir);
  cleanup_free char *config = NULL, *cfg_path = NULL, *source = NULL;
  cleanup_json json_t *manifest = NULL, *cfg = NULL;
  json_t *entry, *layers = NULL, *diff_ids, *tags, *l;
  const char *cfg_name = NULL, *name = opts ? opts->name : NULL;
  size_t config_len, i;
  struct cl_image_build b;

  if (cl_json_load_file (manifest_path, &manifest, err) < 0)
    return -1;
  entry = json_array_get (manifest, 0);
  if (!json_is_object (entry))
    return cl_error_raise (err, CL_ERR_INVALID, "`%s`: expected a list of images", manifest_path);
  if (cl_json_string (entry, "manifest.json[0]", "Config", &cfg_name, err) <= 0
      || cl_json_array (entry, "manifest.json[0]", "Layers", &layers, err) <= 0)
    return cl_error_make (err, 0, "`%s`: image without Config or Layers", manifest_path);
  if (strstr (cfg_name, ".."))
    return cl_error_make (err, 0, "`%s`: bad Config path `%s`", manifest_path, cfg_name);
  cfg_path = cl_strdup_printf ("%s/%s", dir, cfg_name);
  if (cl_read_file (cfg_path, &config, &config_len, err) < 0
      || cl_json_load_buffer (cfg_name, config, config_len, &cfg, err) < 0)
    return -1;
  diff_ids = json_object_get (json_object_get (cfg, "rootfs"), "diff_ids");
  if (json_array_size (diff_ids) != json_array_size (layers))
    return cl_error_make (err, 0, "`%s`: %zu layers but %zu rootfs.diff_ids in the config",
                          manifest_path, json_array_size (layers), json_array_size (diff_ids));
  tags = json_object_get (entry, "RepoTags");
  if (name == NULL && json_is_string (json_array_get (tags, 0)))
    name = json_string_value (json_array_get (tags, 0));
  cl_img_build_init (&b, s, opts ? opts->progress : NULL, opts ? opts->progress_opaque : NULL);
  if (image_present (s, config, config_len))
    layers = NULL; /* already imported: only the name is new */
  json_array_foreach (layers, i, l)
  {
    char hex[CL_SHA256_HEX_LEN + 1];
    cleanup_free char *path = NULL, *ctx = cl_json_path_index ("config.rootfs.diff_ids", i);
    const char *rel = json_string_value (l);
    if (rel == NULL || strstr (rel, ".."))
      {
        cl_error_make (err, 0, "`%s`: bad layer path at Layers[%zu]", manifest_path, i);
        goto fail;
      }
    if (cl_img_digest_parse (json_string_value (json_array_get (diff_ids, i)), ctx, hex, err) < 0)
      goto fail;
    path = cl_strdup_printf ("%s/%s", dir, rel);
    /* docker-archive layers are uncompressed: their digest is the diff_id. */
    if (cl_img_build_add_layer (&b, path, hex, NULL, err) < 0)
      goto fail;
  }
  source = cl_strdup_printf ("docker-archive:%s", dir);
  if (cl_img_build_commit (&b, config, config_len, NULL, 0, name, source, id_out, err) < 0)
    goto fail;
  return 0;
fail:
  cl_img_build_abort (&b);
  return -1;
}

/* ---- plain rootfs tarball ---- */

/* The sha256 of the uncompressed tar stream (the OCI diff_id). */
static int
uncompressed_digest (const char *path, char hex[CL_SHA256_HEX_LEN + 1], cl_error_t *err)
{
  struct archive *a = archive_read_new ();
  struct archive_entry *e;
  struct cl_sha256 h;
  char buf[65536];
  ssize_t n;
  int ret = 0;

  archive_read_support_filter_all (a);
  archive_read_support_format_raw (a);
  if (archive_read_open_filename (a, path, 65536) != ARCHIVE_OK
      || archive_read_next_header (a, &e) != ARCHIVE_OK)
    {
      ret = cl_error_make (err, 0, "`%s`: %s", path, archive_error_string (a));
      archive_read_free (a);
      return ret;
    }
  cl_img_sha256_init (&h);
  while ((n = archive_read_data (a, buf, sizeof buf)) > 0)
    cl_img_sha256_update (&h, buf, n);
  if (n < 0)
    ret = cl_error_make (err, 0, "`%s`: %s", path, archive_error_string (a));
  cl_img_sha256_final_hex (&h, hex);
  archive_read_free (a);
  return ret;
}

static bool
is_compressed (const char *path)
{
  unsigned char magic[6] = { 0 };
  cleanup_close int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || read (fd, magic, sizeof magic) < 4)
    return false;
  return (magic[0] == 0x1f && magic[1] == 0x8b)                        /* gzip */
         || (magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f) /* zstd */
         || (magic[0] == 0xfd && magic[1] == '7' && magic[2] == 'z')   /* xz */
         || (magic[0] == 'B' && magic[1] == 'Z' && magic[2] == 'h');   /* bzip2 */
}

int
cl_img_import_rootfs_tar (struct cl_image_store *s, const char *path, const char *name,
                          const char *source, const struct cl_image_import_opts *opts,
                          char **id_out, cl_error_t *err)
{
  struct cl_image_build b;
  char hex[CL_SHA256_HEX_LEN + 1], diff_id[CL_SHA256_HEX_LEN + 1];
  cleanup_json json_t *cfg = NULL;
  cleanup_free char *config = NULL;

  cl_img_build_init (&b, s, opts ? opts->progress : NULL, opts ? opts->progress_opaque : NULL);
  if (cl_img_build_add_layer (&b, path, NULL, hex, err) < 0)
    goto fail;
  memcpy (diff_id, hex, sizeof hex);
  if (is_compressed (path) && uncompressed_digest (path, diff_id, err) < 0)
    goto fail;
  /* No creation time in the config: the same tarball gives the same id. */
  cfg = json_pack ("{s:s, s:s, s:{s:[s], s:[s]}, s:{s:s, s:[s+]}}", "architecture", "amd64", "os",
                   "linux", "config", "Env", DEFAULT_PATH_ENV, "Cmd", "/bin/sh", "rootfs", "type",
                   "layers", "diff_ids", "sha256:", diff_id);
  config = json_dumps (cfg, JSON_COMPACT | JSON_SORT_KEYS);
  if (cl_img_build_commit (&b, config, strlen (config), NULL, 0, name, source, id_out, err) < 0)
    goto fail;
  return 0;
fail:
  cl_img_build_abort (&b);
  return -1;
}

/* ---- archives of layouts ---- */

enum archive_kind
{
  KIND_ROOTFS,
  KIND_OCI,
  KIND_DOCKER,
};

static int
scan_archive (const char *path, enum archive_kind *kind, cl_error_t *err)
{
  struct archive *a = archive_read_new ();
  struct archive_entry *e;
  bool index = false, layout = false, manifest = false;
  size_t n = 0;
  int r;

  archive_read_support_filter_all (a);
  archive_read_support_format_tar (a);
  archive_read_support_format_gnutar (a);
  if (archive_read_open_filename (a, path, 65536) != ARCHIVE_OK)
    {
      r = cl_error_make (err, 0, "not an archive: %s", archive_error_string (a));
      archive_read_free (a);
      return r;
    }
  while ((r = archive_read_next_header (a, &e)) == ARCHIVE_OK)
    {
      const char *p = archive_entry_pathname (e);
      n++;
      while (p[0] == '.' && p[1] == '/')
        p += 2;
      index |= strcmp (p, "index.json") == 0;
      layout |= strcmp (p, "oci-layout") == 0;
      manifest |= strcmp (p, "manifest.json") == 0;
    }
  if (r != ARCHIVE_EOF)
    {
      r = cl_error_make (err, 0, "%s: %s", n ? "corrupted archive" : "not an archive",
                         archive_error_string (a));
      archive_read_free (a);
      return r;
    }
  archive_read_free (a);
  *kind = index && layout ? KIND_OCI : manifest ? KIND_DOCKER : KIND_ROOTFS;
  return 0;
}

static int
import_archive (struct cl_image_store *s, const char *path, const struct cl_image_import_opts *opts,
                char **id_out, cl_error_t *err)
{
  enum archive_kind kind = KIND_ROOTFS;
  cleanup_free char *stage = NULL, *name = NULL, *source = NULL;
  cleanup_close int fd = -1;
  struct stat st;
  int r;

  if (scan_archive (path, &kind, err) < 0)
    return -1;
  if (kind == KIND_ROOTFS)
    {
      name = opts && opts->name ? cl_xstrdup (opts->name) : name_from_path (path, NULL);
      source = cl_strdup_printf ("rootfs:%s", path);
      return cl_img_import_rootfs_tar (s, path, name, source, opts, id_out, err);
    }
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fstat (fd, &st) < 0)
    return cl_error_errno (err, "open `%s`", path);
  if (cl_img_store_mkstage (s, "archive", &stage, err) < 0)
    return -1;
  r = cl_img_layer_unpack (fd, stage, NULL, NULL, opts ? opts->progress : NULL,
                           opts ? opts->progress_opaque : NULL, "unpack archive", st.st_size, err);
  if (r == 0)
    r = kind == KIND_OCI ? cl_img_import_oci_dir (s, stage, opts, id_out, err)
                         : import_docker_dir (s, stage, opts, id_out, err);
  cl_rm_rf (stage, NULL);
  return r;
}

int
cl_img_import (struct cl_image_store *s, const char *path, const struct cl_image_import_opts *opts,
               char **id_out, cl_error_t *err)
{
  struct stat st;
  int r;

  if (opts && opts->name)
    {
      cleanup_free char *n = NULL, *t = NULL;
      if (cl_img_name_parse (opts->name, &n, &t, err) < 0)
        return -1;
    }
  if (stat (path, &st) < 0)
    return cl_error_errno (err, "import `%s`", path);
  if (S_ISDIR (st.st_mode))
    {
      cleanup_free char *index = cl_strdup_printf ("%s/index.json", path);
      cleanup_free char *manifest = cl_strdup_printf ("%s/manifest.json", path);
      if (access (index, F_OK) == 0)
        r = cl_img_import_oci_dir (s, path, opts, id_out, err);
      else if (access (manifest, F_OK) == 0)
        r = import_docker_dir (s, path, opts, id_out, err);
      else
        return cl_error_make (err, 0,
                              "import `%s`: not an OCI layout (no index.json) nor a docker "
                              "archive (no manifest.json)",
                              path);
    }
  else
    r = import_archive (s, path, opts, id_out, err);
  if (r < 0)
    return cl_error_wrap (err, "import `%s`", path);
  return 0;
}
