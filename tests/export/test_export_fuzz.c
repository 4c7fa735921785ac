/* The params.pt reader on hostile input: thousands of deterministic mutations of a
 * real torch.save file (golden/llama/lens/params.pt) must each either load or fail
 * with a one-line error, never crash, hang or read out of bounds (CI also runs this
 * under AddressSanitizer). Two kinds:
 *  - raw: bytes flipped, overwritten, truncated or duplicated anywhere in the file,
 *    biased toward the zip headers and directory;
 *  - pickle: data.pkl mutated, then re-packed into a valid zip (correct CRCs) with
 *    the original storages, so the mutations reach the pickle machine. */
#include <string.h>

#include "tl_test.h"
#include "tlens/export.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)((rng >> 11) % n);
}

static long n_ok, n_err;
static void try_load(const unsigned char *b, size_t n) {
  tl_pt_file f;
  tl_clear_error();
  if (tl_pt_open_mem(&f, b, n, "fuzz.pt") == 0) {
    /* whatever loaded must be readable in full */
    for (int i = 0; i < f.n; i++) {
      float *v = malloc((size_t)(f.t[i].numel ? f.t[i].numel : 1) * sizeof *v);
      tl_pt_to_f32(&f.t[i], v);
      free(v);
    }
    tl_pt_close(&f);
    n_ok++;
  } else {
    const char *e = tl_errmsg();
    CHECKF(e[0] && !strchr(e, '\n') && strstr(e, "fuzz.pt"), "bad error message '%s'", e);
    n_err++;
  }
}

/* interesting bytes for a pickle: opcodes and boundary values */
static const unsigned char special[] = {0x80, 'c', 'q', 'r', 'h', 'j', '(', ')', 't', 0x85, 0x86, 0x87, ']', '}', 'a', 'e', 's', 'u',
                                        'K', 'M', 'J', 0x8a, 'X', 'U', 'Q', 'R', 'b', '.', '0', '1', '2', 0x88, 0x89, 'N',
                                        0x93, 0x94, 0x95, 0x00, 0xff, 0x7f, '\n'};

static void mutate(unsigned char *b, size_t *n, size_t cap, int biased_zip) {
  int k = 1 + (int)rnd(4);
  for (int i = 0; i < k && *n > 0; i++) {
    size_t pos;
    if (biased_zip && rnd(2)) /* zip records: the start of the file or its tail */
      pos = rnd(2) ? rnd((uint32_t)(*n < 128 ? *n : 128)) : *n - 1 - rnd((uint32_t)(*n < 700 ? *n : 700));
    else
      pos = rnd((uint32_t)*n);
    switch (rnd(6)) {
    case 0: b[pos] ^= (unsigned char)(1u << rnd(8)); break;
    case 1: b[pos] = (unsigned char)rnd(256); break;
    case 2: b[pos] = special[rnd(sizeof special)]; break;
    case 3: *n = pos; break; /* truncate */
    case 4: /* delete one byte */
      memmove(b + pos, b + pos + 1, *n - pos - 1);
      (*n)--;
      break;
    case 5: /* duplicate a short run */
      if (*n + 8 <= cap) {
        size_t len = 1 + rnd(8);
        if (pos + len > *n) len = *n - pos;
        memmove(b + pos + len, b + pos, *n - pos);
        *n += len;
      }
      break;
    }
  }
}

int main(void) {
  char path[4096];
  snprintf(path, sizeof path, "%s/golden/llama/lens/params.pt", tl_test_fixtures());
  char *orig;
  size_t n0;
  CHECK(tl_read_file(path, &orig, &n0) == 0);
  size_t cap = n0 + 4096;
  unsigned char *b = malloc(cap);

  /* raw mutations */
  for (int it = 0; it < 3000; it++) {
    size_t n = n0;
    memcpy(b, orig, n0);
    mutate(b, &n, cap, 1);
    try_load(b, n);
  }
  long raw_ok = n_ok;

  /* pickle mutations inside a valid zip */
  tl_zip z;
  CHECK(tl_zip_parse(&z, orig, n0, "orig") == 0);
  const tl_zip_entry *pk = tl_zip_find(&z, "params/data.pkl");
  CHECK(pk != NULL);
  unsigned char *pkl = malloc(pk->size + 4096);
  for (int it = 0; it < 4000 && pk; it++) {
    size_t n = (size_t)pk->size;
    memcpy(pkl, orig + pk->data_offset, n);
    mutate(pkl, &n, (size_t)pk->size + 4096, 0);
    tl_zipw *w = tl_zipw_open_mem(0);
    tl_zipw_add(w, "params/data.pkl", pkl, n);
    for (int i = 0; i < z.n; i++)
      if (strcmp(z.e[i].name, "params/data.pkl"))
        tl_zipw_add(w, z.e[i].name, orig + z.e[i].data_offset, (size_t)z.e[i].size);
    unsigned char *mem;
    size_t mlen;
    CHECK(tl_zipw_finish(w, &mem, &mlen) == 0);
    try_load(mem, mlen);
    free(mem);
  }
  tl_zip_free(&z);
  fprintf(stderr, "fuzz: raw %ld loaded, pickle %ld loaded, %ld rejected\n", raw_ok, n_ok - raw_ok, n_err);
  /* the harness must exercise both outcomes */
  CHECK(n_err > 1000 && n_ok - raw_ok > 10);
  free(pkl);
  free(b);
  free(orig);
  return tl_test_finish("export_fuzz");
}
