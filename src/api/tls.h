/* SPDX-License-Identifier: Apache-2.0 */
/* Certificates for the API over TLS, Incus-style: the server and each
   client own a self-signed certificate (ECDSA P-256), and trust is a
   certificate's SHA-256 fingerprint in the other side's store, not a CA. */
#ifndef CLOISON_API_TLS_H
#define CLOISON_API_TLS_H

#include "common/error.h"

#include <stddef.h>

/* 64 hex digits and a NUL */
#define CL_API_FINGERPRINT_LEN 65

/* DIR/NAME.crt and DIR/NAME.key: made (self-signed, common name `cn`)
   when either is missing, under a lock so that two processes agree on one
   pair.  DIR is created mode 0700, the key is 0600.  *crt_pem (optional)
   receives the certificate's text (caller frees). */
int cl_api_tls_keypair (const char *dir, const char *name, const char *cn, char **crt_pem,
                        cl_error_t *err);

/* The SHA-256 of the certificate's DER form, as lowercase hex. */
int cl_api_tls_fingerprint_pem (const char *pem, char fp[CL_API_FINGERPRINT_LEN], cl_error_t *err);
void cl_api_tls_fingerprint_der (const void *der, size_t len, char fp[CL_API_FINGERPRINT_LEN]);
/* The PEM text of a DER certificate (caller frees). */
char *cl_api_tls_der_to_pem (const void *der, size_t len);

/* The public key pin of a certificate as libcurl takes it:
   "sha256//BASE64" of its SubjectPublicKeyInfo (caller frees). */
int cl_api_tls_pubkey_pin (const char *pem, char **pin, cl_error_t *err);

/* The server's pair in the state root: ROOT/tls/server.crt, server.key. */
int cl_api_tls_server_keypair (const char *root, char **crt_pem, char **key_pem, cl_error_t *err);

#endif
