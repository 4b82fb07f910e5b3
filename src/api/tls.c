/* SPDX-License-Identifier: Apache-2.0 */
/* Self-signed certificates and fingerprints, with GnuTLS. */
#include "api/tls.h"
#include "common/cleanup.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CERT_YEARS 10

static int
gnutls_fail (cl_error_t *err, int r, const char *what)
{
  return cl_error_make (err, 0, "%s: %s", what, gnutls_strerror (r));
}

/* Writes a file readable by its owner only, atomically. */
static int
write_private (const char *path, const void *data, size_t len, mode_t mode, cl_error_t *err)
{
  cleanup_free char *tmp = cl_strdup_printf ("%s.tmp.%d", path, getpid ());
  cleanup_close int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

  if (fd < 0)
    return cl_error_errno (err, "open `%s`", tmp);
  if (fchmod (fd, mode) < 0 || cl_write_all (fd, data, len) < 0 || fsync (fd) < 0)
    {
      int saved = errno;
      unlink (tmp);
      return cl_error_make (err, saved, "write `%s`", tmp);
    }
  if (rename (tmp, path) < 0)
    {
      int saved = errno;
      unlink (tmp);
      return cl_error_make (err, saved, "rename `%s`", path);
    }
  return 0;
}

static int
make_pair (const char *cn, gnutls_datum_t *crt_out, gnutls_datum_t *key_out, cl_error_t *err)
{
  gnutls_x509_privkey_t key = NULL;
  gnutls_x509_crt_t crt = NULL;
  unsigned char serial[16], keyid[64];
  size_t keyid_len = sizeof keyid;
  time_t now = time (NULL);
  int r, ret = -1;

  if ((r = gnutls_x509_privkey_init (&key)) < 0 || (r = gnutls_x509_crt_init (&crt)) < 0)
    {
      gnutls_fail (err, r, "certificate");
      goto out;
    }
  if ((r = gnutls_x509_privkey_generate (key, GNUTLS_PK_ECDSA,
                                         GNUTLS_CURVE_TO_BITS (GNUTLS_ECC_CURVE_SECP256R1), 0))
      < 0)
    {
      gnutls_fail (err, r, "generate an ECDSA P-256 key");
      goto out;
    }
  gnutls_rnd (GNUTLS_RND_NONCE, serial, sizeof serial);
  serial[0] &= 0x7f; /* a positive serial */
  if ((r = gnutls_x509_crt_set_version (crt, 3)) < 0
      || (r = gnutls_x509_crt_set_serial (crt, serial, sizeof serial)) < 0
      || (r = gnutls_x509_crt_set_activation_time (crt, now - 300)) < 0
      || (r = gnutls_x509_crt_set_expiration_time (crt, now + CERT_YEARS * 365 * 86400L)) < 0
      || (r
          = gnutls_x509_crt_set_dn_by_oid (crt, GNUTLS_OID_X520_ORGANIZATION_NAME, 0, "cloison", 7))
             < 0
      || (r = gnutls_x509_crt_set_dn_by_oid (crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
                                             (unsigned)strlen (cn)))
             < 0
      || (r = gnutls_x509_crt_set_key (crt, key)) < 0
      /* its own anchor: the peer pins this very certificate */
      || (r = gnutls_x509_crt_set_basic_constraints (crt, 1, -1)) < 0
      || (r = gnutls_x509_crt_set_key_usage (crt, GNUTLS_KEY_DIGITAL_SIGNATURE
                                                      | GNUTLS_KEY_KEY_CERT_SIGN))
             < 0
      || (r = gnutls_x509_crt_set_key_purpose_oid (crt, GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0
      || (r = gnutls_x509_crt_set_key_purpose_oid (crt, GNUTLS_KP_TLS_WWW_CLIENT, 0)) < 0
      || (r = gnutls_x509_crt_get_key_id (crt, 0, keyid, &keyid_len)) < 0
      || (r = gnutls_x509_crt_set_subject_key_id (crt, keyid, keyid_len)) < 0
      || (r = gnutls_x509_crt_sign2 (crt, crt, key, GNUTLS_DIG_SHA256, 0)) < 0
      || (r = gnutls_x509_crt_export2 (crt, GNUTLS_X509_FMT_PEM, crt_out)) < 0
      || (r = gnutls_x509_privkey_export2 (key, GNUTLS_X509_FMT_PEM, key_out)) < 0)
    {
      gnutls_fail (err, r, "make a self-signed certificate");
      goto out;
    }
  ret = 0;
out:
  if (crt)
    gnutls_x509_crt_deinit (crt);
  if (key)
    gnutls_x509_privkey_deinit (key);
  return ret;
}

int
cl_api_tls_keypair (const char *dir, const char *name, const char *cn, char **crt_pem,
                    cl_error_t *err)
{
  cleanup_free char *crt_path = cl_strdup_printf ("%s/%s.crt", dir, name);
  cleanup_free char *key_path = cl_strdup_printf ("%s/%s.key", dir, name);
  cleanup_free char *lock_path = cl_strdup_printf ("%s/.%s.lock", dir, name);
  cleanup_close int lock = -1;
  gnutls_datum_t crt = { NULL, 0 }, key = { NULL, 0 };
  int ret = 0;

  if (access (crt_path, R_OK) == 0 && access (key_path, R_OK) == 0)
    return crt_pem ? cl_read_file (crt_path, crt_pem, NULL, err) : 0;
  if (cl_mkdir_p (dir, 0700, err) < 0)
    return -1;
  lock = open (lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock < 0)
    return cl_error_errno (err, "open `%s`", lock_path);
  if (flock (lock, LOCK_EX) < 0)
    return cl_error_errno (err, "lock `%s`", lock_path);
  /* another process may have made them while we waited */
  if (access (crt_path, R_OK) != 0 || access (key_path, R_OK) != 0)
    {
      if (make_pair (cn, &crt, &key, err) < 0)
        return -1;
      /* the key first: a certificate never names a key that is missing */
      ret = write_private (key_path, key.data, key.size, 0600, err) < 0
                    || write_private (crt_path, crt.data, crt.size, 0644, err) < 0
                ? -1
                : 0;
      gnutls_free (crt.data);
      gnutls_free (key.data);
    }
  if (ret == 0 && crt_pem)
    ret = cl_read_file (crt_path, crt_pem, NULL, err);
  return ret;
}

int
cl_api_tls_server_keypair (const char *root, char **crt_pem, char **key_pem, cl_error_t *err)
{
  cleanup_free char *dir = cl_strdup_printf ("%s/tls", root);
  cleanup_free char *key_path = cl_strdup_printf ("%s/server.key", dir);
  char host[256] = "cloison";

  gethostname (host, sizeof host - 1);
  if (cl_api_tls_keypair (dir, "server", host, crt_pem, err) < 0)
    return -1;
  if (key_pem && cl_read_file (key_path, key_pem, NULL, err) < 0)
    {
      if (crt_pem)
        free (*crt_pem), *crt_pem = NULL;
      return -1;
    }
  return 0;
}

void
cl_api_tls_fingerprint_der (const void *der, size_t len, char fp[CL_API_FINGERPRINT_LEN])
{
  unsigned char digest[32];
  gnutls_hash_fast (GNUTLS_DIG_SHA256, der, len, digest);
  for (size_t i = 0; i < sizeof digest; i++)
    snprintf (fp + 2 * i, 3, "%02x", digest[i]);
}

int
cl_api_tls_fingerprint_pem (const char *pem, char fp[CL_API_FINGERPRINT_LEN], cl_error_t *err)
{
  gnutls_x509_crt_t crt;
  gnutls_datum_t in = { (unsigned char *)pem, (unsigned)strlen (pem) }, der = { NULL, 0 };
  int r;

  if ((r = gnutls_x509_crt_init (&crt)) < 0)
    return gnutls_fail (err, r, "certificate");
  r = gnutls_x509_crt_import (crt, &in, GNUTLS_X509_FMT_PEM);
  if (r >= 0)
    r = gnutls_x509_crt_export2 (crt, GNUTLS_X509_FMT_DER, &der);
  gnutls_x509_crt_deinit (crt);
  if (r < 0)
    return gnutls_fail (err, r, "certificate: not a PEM X.509 certificate");
  cl_api_tls_fingerprint_der (der.data, der.size, fp);
  gnutls_free (der.data);
  return 0;
}

char *
cl_api_tls_der_to_pem (const void *der, size_t len)
{
  gnutls_datum_t in = { (unsigned char *)der, (unsigned)len }, out = { NULL, 0 };
  char *s;

  if (gnutls_pem_base64_encode2 ("CERTIFICATE", &in, &out) < 0)
    return NULL;
  s = cl_xmalloc0 (out.size + 1);
  memcpy (s, out.data, out.size);
  gnutls_free (out.data);
  return s;
}

int
cl_api_tls_pubkey_pin (const char *pem, char **pin, cl_error_t *err)
{
  gnutls_x509_crt_t crt;
  gnutls_datum_t in = { (unsigned char *)pem, (unsigned)strlen (pem) }, b64 = { NULL, 0 };
  unsigned char id[32];
  size_t id_len = sizeof id;
  int r;

  if ((r = gnutls_x509_crt_init (&crt)) < 0)
    return gnutls_fail (err, r, "certificate");
  r = gnutls_x509_crt_import (crt, &in, GNUTLS_X509_FMT_PEM);
  if (r >= 0)
    r = gnutls_x509_crt_get_key_id (crt, GNUTLS_KEYID_USE_SHA256, id, &id_len);
  gnutls_x509_crt_deinit (crt);
  if (r < 0)
    return gnutls_fail (err, r, "pinned server certificate");
  in.data = id;
  in.size = (unsigned)id_len;
  if ((r = gnutls_base64_encode2 (&in, &b64)) < 0)
    return gnutls_fail (err, r, "base64");
  *pin = cl_strdup_printf ("sha256//%.*s", (int)b64.size, b64.data);
  gnutls_free (b64.data);
  return 0;
}
