/* SPDX-License-Identifier: Apache-2.0 */
/* JSON input with errors that name the file, line and column, or the field
   by its dotted path ("linux.resources.memory.limit"), so that a user sees
   at once what to fix. */
#ifndef CLOISON_JSON_H
#define CLOISON_JSON_H

#include "common/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

void cl_cleanup_json_decref (json_t **j);
#define cleanup_json __attribute__ ((cleanup (cl_cleanup_json_decref)))

/* Parses a file; a syntax error reads "FILE:LINE:COLUMN: text". */
int cl_json_load_file (const char *path, json_t **out, cl_error_t *err);
/* Same for a buffer; `name` stands for the file in messages. */
int cl_json_load_buffer (const char *name, const char *buf, size_t len, json_t **out,
                         cl_error_t *err);

/* Typed field readers.  `obj` must be an object (or NULL: field absent).
   `ctx` is the dotted path of obj ("" for the top), used in errors such as
   "process.user.uid: expected an unsigned integer, got string".
   Return 1 when the field was present and read, 0 when absent (out left
   unchanged), -1 on a type error. */
int cl_json_string (json_t *obj, const char *ctx, const char *key, const char **out,
                    cl_error_t *err);
int cl_json_bool (json_t *obj, const char *ctx, const char *key, bool *out, cl_error_t *err);
int cl_json_int64 (json_t *obj, const char *ctx, const char *key, int64_t *out, cl_error_t *err);
int cl_json_uint64 (json_t *obj, const char *ctx, const char *key, uint64_t *out, cl_error_t *err);
/* Objects and arrays are returned borrowed. */
int cl_json_object (json_t *obj, const char *ctx, const char *key, json_t **out, cl_error_t *err);
int cl_json_array (json_t *obj, const char *ctx, const char *key, json_t **out, cl_error_t *err);
/* Array of strings -> NULL-terminated vector of borrowed pointers, which
   the caller frees (the vector only). */
int cl_json_string_array (json_t *obj, const char *ctx, const char *key, const char ***out,
                          size_t *n, cl_error_t *err);

/* n strings -> a new array of them. */
json_t *cl_json_strings (const char *const *v, size_t n);

/* "object", "string", "integer" (integral reals too)... for messages. */
const char *cl_json_type_name (json_t *v);

/* "a.b" + "c" -> "a.b.c"; "a" + index 2 -> "a[2]" (caller frees). */
char *cl_json_path (const char *ctx, const char *key);
char *cl_json_path_index (const char *ctx, size_t index);

#endif
