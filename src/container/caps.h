/* SPDX-License-Identifier: Apache-2.0 */
/* Capabilities from process.capabilities (bounding, effective,
   inheritable, permitted, ambient), with libcap. */
#ifndef CLOISON_CONTAINER_CAPS_H
#define CLOISON_CONTAINER_CAPS_H

#include "common/error.h"

#include <jansson.h>

/* Unknown capability names are errors naming the set and the entry. */
int cl_ctr_caps_validate (json_t *capabilities, cl_error_t *err);
/* Step 1, before switching to the container user: drop what is not in the
   bounding set, and keep capabilities across setuid. */
int cl_ctr_caps_drop_bounding (json_t *capabilities, cl_error_t *err);
/* Step 2, after setuid/setgid: set effective, permitted, inheritable and
   ambient exactly as the spec lists them. */
int cl_ctr_caps_apply (json_t *capabilities, cl_error_t *err);

#endif
