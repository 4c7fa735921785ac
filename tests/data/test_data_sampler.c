/* Sampler: PRNG and shuffle against an independent Python re-implementation, sharding
 * invariance across world sizes, exact resume from a saved cursor, the no-wrap check. */
#include <string.h>

#include "tl_test.h"
#include "tlens/core.h"
#include "tlens/data.h"

/* All ranks' shares of the next global batch, concatenated rank by rank. */
static void global_batch(tl_sampler *shards, int world, int64_t G, int64_t *out) {
  int64_t off = 0;
  int64_t *tmp = malloc((size_t)G * sizeof *tmp);
  for (int r = 0; r < world; r++) {
    int64_t cnt = -1;
    CHECK(tl_sampler_next(&shards[r], G, r, world, tmp, &cnt) == 0);
    CHECK(cnt == (int64_t)(r + 1) * G / world - (int64_t)r * G / world);
    memcpy(out + off, tmp, (size_t)cnt * sizeof *tmp);
    off += cnt;
  }
  CHECK(off == G);
  free(tmp);
}

static int one_line(const char *s) { return s[0] && !strchr(s, '\n'); }

int main(void) {
  /* splitmix64 from state 0: first output as published with the algorithm */
  uint64_t st = 0;
  CHECK(tl_splitmix64(&st) == 0xE220A8397B1DCDAFull);

  /* Epoch permutations; expected values from a separate Python implementation of
   * splitmix64 + Fisher-Yates with rejection sampling, as documented in sampler.c. */
  {
    tl_sampler s;
    CHECK(tl_sampler_init(&s, 10, 42, 1) == 0);
    int64_t idx[10], cnt;
    CHECK(tl_sampler_next(&s, 10, 0, 1, idx, &cnt) == 0 && cnt == 10);
    const int64_t e0[10] = {0, 9, 5, 8, 6, 4, 7, 2, 1, 3}; /* seed 42 + epoch 0 */
    CHECK(memcmp(idx, e0, sizeof e0) == 0);
    CHECK(tl_sampler_next(&s, 10, 0, 1, idx, &cnt) == 0 && cnt == 10);
    const int64_t e1[10] = {4, 2, 5, 6, 1, 3, 9, 8, 7, 0}; /* seed 42 + epoch 1 */
    CHECK(memcmp(idx, e1, sizeof e1) == 0);
    tl_cursor c = tl_sampler_cursor(&s);
    CHECK(c.epoch == 1 && c.pos == 10);
    tl_sampler_free(&s);

    CHECK(tl_sampler_init(&s, 7, 0, 1) == 0);
    int64_t i7[7];
    CHECK(tl_sampler_next(&s, 7, 0, 1, i7, &cnt) == 0);
    const int64_t p7[7] = {6, 3, 1, 5, 4, 0, 2};
    CHECK(memcmp(i7, p7, sizeof p7) == 0);
    tl_sampler_free(&s);
  }

  /* no shuffle: identity order; a batch never straddles epochs (leftover skipped) */
  {
    tl_sampler s;
    CHECK(tl_sampler_init(&s, 10, 42, 0) == 0);
    int64_t idx[4], cnt;
    for (int b = 0; b < 2; b++) {
      CHECK(tl_sampler_next(&s, 4, 0, 1, idx, &cnt) == 0);
      for (int k = 0; k < 4; k++) CHECK(idx[k] == b * 4 + k);
    }
    CHECK(tl_sampler_next(&s, 4, 0, 1, idx, &cnt) == 0); /* positions 8,9 skipped */
    CHECK(idx[0] == 0 && idx[3] == 3 && tl_sampler_cursor(&s).epoch == 1);
    tl_sampler_free(&s);
  }

  /* shards of W = 1, 2, 4 (and an uneven 3) concatenate to the same global batches */
  {
    const int64_t N = 1000, G = 24;
    const int worlds[4] = {1, 2, 3, 4};
    int64_t ref[40][24], got[24];
    for (int wi = 0; wi < 4; wi++) {
      int W = worlds[wi];
      tl_sampler sh[4];
      for (int r = 0; r < W; r++) CHECK(tl_sampler_init(&sh[r], N, 42, 1) == 0);
      for (int b = 0; b < 40; b++) { /* crosses an epoch boundary (41 batches per epoch) */
        global_batch(sh, W, G, got);
        if (wi == 0) memcpy(ref[b], got, sizeof got);
        else CHECKF(memcmp(ref[b], got, sizeof got) == 0, "W=%d batch %d", W, b);
      }
      for (int r = 0; r < W; r++) tl_sampler_free(&sh[r]);
    }
    /* a whole epoch is a permutation: every chunk seen once in the first 41 batches */
    tl_sampler s;
    CHECK(tl_sampler_init(&s, N, 7, 1) == 0);
    char *seen = calloc(N, 1);
    int64_t idx[24], cnt, dup = 0;
    for (int b = 0; b < 41; b++) {
      CHECK(tl_sampler_next(&s, G, 0, 1, idx, &cnt) == 0);
      for (int k = 0; k < cnt; k++) dup += seen[idx[k]]++;
    }
    CHECK(dup == 0);
    tl_sampler_free(&s);
    free(seen);
  }

  /* resume: a sampler restored from a saved cursor continues exactly */
  {
    tl_sampler a, b;
    CHECK(tl_sampler_init(&a, 300, 42, 1) == 0);
    int64_t ia[16], ib[16], cnt;
    for (int k = 0; k < 25; k++) CHECK(tl_sampler_next(&a, 32, 1, 2, ia, &cnt) == 0); /* into epoch 2 */
    tl_cursor saved = tl_sampler_cursor(&a);
    CHECK(saved.epoch == 2);
    CHECK(tl_sampler_init(&b, 300, 42, 1) == 0);
    CHECK(tl_sampler_restore(&b, saved) == 0);
    for (int k = 0; k < 30; k++) {
      CHECK(tl_sampler_next(&a, 32, 1, 2, ia, &cnt) == 0);
      CHECK(tl_sampler_next(&b, 32, 1, 2, ib, &cnt) == 0);
      CHECKF(memcmp(ia, ib, sizeof ia) == 0, "batch %d after resume", k);
    }
    tl_cursor bad = {0, 301};
    CHECK(tl_sampler_restore(&b, bad) == -1 && one_line(tl_errmsg()));
    tl_sampler_free(&a);
    tl_sampler_free(&b);
  }

  /* errors */
  {
    tl_sampler s;
    CHECK(tl_sampler_init(&s, 0, 42, 1) == -1);
    CHECK(tl_sampler_init(&s, 8, 42, 1) == 0);
    int64_t idx[16], cnt;
    CHECK(tl_sampler_next(&s, 16, 0, 1, idx, &cnt) == -1 && one_line(tl_errmsg())); /* G > n */
    CHECK(tl_sampler_next(&s, 4, 2, 2, idx, &cnt) == -1);                           /* bad rank */
    CHECK(tl_sampler_next(&s, 2, 0, 4, idx, &cnt) == -1);                           /* G < W */
    tl_sampler_free(&s);
  }

  /* the no-wrap rule: 250 steps x 128 samples need 32000 chunks */
  CHECK(tl_data_check_enough(32000, 250, 128, "corpus.jsonl") == 0);
  CHECK(tl_data_check_enough(31999, 250, 128, "corpus.jsonl") == -1);
  CHECK(one_line(tl_errmsg()) && strstr(tl_errmsg(), "corpus.jsonl") && strstr(tl_errmsg(), "32000"));
  CHECK(tl_data_check_enough(10, INT64_MAX / 2, 4, "x") == -1);
  return tl_test_finish("test_data_sampler");
}
