/* Arrays of records that begin with their name (`char *name` as first member:
 * tl_st_tensor, tl_zip_entry, tl_pt_tensor): the file-format readers keep what a
 * file lists that way, look entries up by the name the file gives them, and own
 * the names. Callers pass sizeof one record; each type asserts that its name
 * comes first. */
#ifndef TLENS_NAMED_H
#define TLENS_NAMED_H

#include <stdlib.h>
#include <string.h>

/* The first of n records named `name`, or NULL. */
static inline const void *tl_named_find(const void *records, int n, size_t size, const char *name) {
  const char *p = records;
  for (int i = 0; i < n; i++, p += size)
    if (!strcmp(*(char *const *)(const void *)p, name)) return p;
  return NULL;
}

/* Frees the names of n records, then the array. */
static inline void tl_named_free(void *records, int n, size_t size) {
  char *p = records;
  for (int i = 0; i < n; i++, p += size) free(*(char **)(void *)p);
  free(records);
}

#endif
