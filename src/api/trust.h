/* SPDX-License-Identifier: Apache-2.0 */
/* The trust store of the API over TLS (Incus-style): client certificates
   by SHA-256 fingerprint, each full or read-only, added by one-time trust
   tokens (`cloison config trust add NAME`) or by a trusted client; and
   the server's own settings (`core.https_address`).  Both live in the
   state database (tables api_certificates, api_trust_tokens,
   api_config); the routes are /1.0/certificates and PATCH /1.0. */
#ifndef CLOISON_API_TRUST_H
#define CLOISON_API_TRUST_H

#include "api/api.h"

/* What a client with this certificate fingerprint may do over TLS
   (NULL: it sent no certificate: CL_API_ACCESS_NONE). */
enum cl_api_access cl_api_cert_access (struct cl_api_ctx *ctx, const char *fingerprint);

/* Called (from the request's thread) after a certificate was removed
   through the API, so that the server closes that client's connections
   at once.  Revocations by another process are seen by
   cl_api_trust_changed. */
void cl_api_set_revoke_hook (struct cl_api_ctx *ctx,
                             void (*fn) (void *data, const char *fingerprint), void *data);

/* True when another connection wrote the state database since the last
   call (PRAGMA data_version): the caller then checks its clients again. */
bool cl_api_trust_changed (struct cl_api_ctx *ctx);

/* A server setting ("core.https_address"); *value NULL when unset
   (caller frees). */
int cl_api_config_get (struct cl_api_ctx *ctx, const char *key, char **value, cl_error_t *err);

/* "HOST:PORT", "[V6]:PORT" or ":PORT" (every address) into a host
   (NULL for every address; caller frees) and a port; errors name
   `what`. */
int cl_api_parse_address (const char *s, const char *what, char **host, int *port, cl_error_t *err);

#endif
