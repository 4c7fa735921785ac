/* Fault injection for tests (see tl_fault in tlens/core.h). The variable is read
 * once; each entry is "site:n" or "site:*". */
#include <stdlib.h>
#include <string.h>

#include "tlens/core.h"

enum { MAX_FAULTS = 16, MAX_SITE = 32 };
typedef struct {
  char site[MAX_SITE];
  long n;
  bool any;
} fault;

static fault faults[MAX_FAULTS];
static int nfaults = -1; /* -1: not read yet */

static void read_faults(void) {
  nfaults = 0;
  const char *env = getenv("TLENS_FAULT");
  if (!env || !*env) return;
  const char *p = env;
  while (*p && nfaults < MAX_FAULTS) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    const char *colon = memchr(p, ':', len);
    fault f = {0};
    size_t sl = colon ? (size_t)(colon - p) : 0;
    bool ok = colon && sl > 0 && sl < MAX_SITE;
    if (ok) {
      memcpy(f.site, p, sl);
      const char *num = colon + 1;
      size_t nl = len - sl - 1;
      if (nl == 1 && *num == '*') f.any = true;
      else {
        char buf[32], *e = NULL;
        ok = nl > 0 && nl < sizeof buf;
        if (ok) {
          memcpy(buf, num, nl);
          buf[nl] = 0;
          f.n = strtol(buf, &e, 10);
          ok = *e == 0;
        }
      }
    }
    if (!ok) {
      tl_warn("TLENS_FAULT: '%.*s' is not site:n or site:*; no fault injected", (int)len, p);
      nfaults = 0;
      return;
    }
    faults[nfaults++] = f;
    p = end ? end + 1 : p + len;
  }
}

bool tl_fault(const char *site, long n) {
  if (nfaults < 0) read_faults();
  for (int i = 0; i < nfaults; i++)
    if (!strcmp(faults[i].site, site) && (faults[i].any || faults[i].n == n)) return true;
  return false;
}
