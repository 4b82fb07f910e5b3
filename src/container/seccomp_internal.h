/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between seccomp.c and seccomp_cache.c. */
#ifndef CLOISON_CONTAINER_SECCOMP_INTERNAL_H
#define CLOISON_CONTAINER_SECCOMP_INTERNAL_H

#include <jansson.h>
#include <linux/filter.h>
#include <stddef.h>

/* Compiled filters by profile, in a root-owned directory: 1 on a hit
   (*insns allocated), 0 on a miss or anything doubtful. */
int cl_ctr_seccomp_cache_get (const char *dir, json_t *seccomp, struct sock_filter **insns,
                              size_t *len, unsigned int *flags);
/* Best effort: a failure only costs the next compile. */
void cl_ctr_seccomp_cache_put (const char *dir, json_t *seccomp, const struct sock_filter *insns,
                               size_t len, unsigned int flags);

#endif
