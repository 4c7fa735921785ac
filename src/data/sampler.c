/* Deterministic, resumable, world-size-independent sample order.
 *
 * PRNG: splitmix64 (Steele, Lea & Flood 2014): state += 0x9E3779B97F4A7C15, then two
 * xor-shift-multiply rounds. One generator per epoch, seeded with (seed + epoch).
 * Shuffle: Fisher-Yates from the top: for i = n-1 .. 1, swap perm[i] with perm[j],
 * j uniform in [0, i], drawn by rejection (no modulo bias): r = next() until
 * r < limit, where limit is the largest multiple of (i+1) representable; j = r % (i+1).
 *
 * The sample stream is epoch 0's order, then epoch 1's, ...; global batch b covers
 * positions [b*G, (b+1)*G) of one epoch (a batch never straddles two epochs; the
 * leftover < G samples at an epoch's end are skipped). Rank r of W takes the contiguous
 * positions [r*G/W, (r+1)*G/W) of each batch, so the concatenation of all ranks' shares
 * is the same global batch whatever W is. The cursor (epoch, pos) fully determines what
 * comes next, so saving and restoring it resumes the exact sequence. */
#include <stdlib.h>
#include <string.h>

#include "tlens/core.h"
#include "tlens/data.h"

uint64_t tl_splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint64_t uniform_below(uint64_t *st, uint64_t bound) {
  uint64_t limit = UINT64_MAX - (UINT64_MAX % bound); /* accept r < limit */
  uint64_t r;
  do r = tl_splitmix64(st);
  while (r >= limit);
  return r % bound;
}

static void build_perm(tl_sampler *s, int64_t epoch) {
  for (int64_t i = 0; i < s->n; i++) s->perm[i] = i;
  uint64_t st = s->seed + (uint64_t)epoch;
  for (int64_t i = s->n - 1; i > 0; i--) {
    int64_t j = (int64_t)uniform_below(&st, (uint64_t)i + 1);
    int64_t t = s->perm[i];
    s->perm[i] = s->perm[j];
    s->perm[j] = t;
  }
  s->perm_epoch = epoch;
}

int tl_sampler_init(tl_sampler *s, int64_t n, uint64_t seed, int shuffle) {
  memset(s, 0, sizeof *s);
  if (n < 1) return tl_fail("sampler: dataset is empty");
  s->n = n;
  s->seed = seed;
  s->shuffle = shuffle;
  s->perm_epoch = -1;
  if (shuffle) s->perm = tl_malloc((size_t)n * sizeof *s->perm);
  return 0;
}

void tl_sampler_free(tl_sampler *s) {
  free(s->perm);
  memset(s, 0, sizeof *s);
}

int tl_sampler_next(tl_sampler *s, int64_t G, int rank, int world, int64_t *idx, int64_t *count) {
  *count = 0;
  if (world < 1 || rank < 0 || rank >= world) return tl_fail("sampler: rank %d of world size %d", rank, world);
  if (G < world) return tl_fail("sampler: global batch of %lld samples cannot be shared by %d ranks", (long long)G, world);
  if (G > s->n) return tl_fail("sampler: global batch of %lld samples exceeds the dataset (%lld chunks)", (long long)G, (long long)s->n);
  if (s->cur.pos + G > s->n) { /* leftover of this epoch: start the next one */
    s->cur.epoch++;
    s->cur.pos = 0;
  }
  if (s->shuffle && s->perm_epoch != s->cur.epoch) build_perm(s, s->cur.epoch);
  int64_t lo = (int64_t)rank * G / world, hi = (int64_t)(rank + 1) * G / world;
  for (int64_t k = lo; k < hi; k++) {
    int64_t p = s->cur.pos + k;
    idx[k - lo] = s->shuffle ? s->perm[p] : p;
  }
  *count = hi - lo;
  s->cur.pos += G;
  return 0;
}

tl_cursor tl_sampler_cursor(const tl_sampler *s) { return s->cur; }

int tl_sampler_restore(tl_sampler *s, tl_cursor c) {
  if (c.epoch < 0 || c.pos < 0 || c.pos > s->n)
    return tl_fail("sampler: cursor (epoch %lld, position %lld) out of range for %lld chunks", (long long)c.epoch,
                   (long long)c.pos, (long long)s->n);
  s->cur = c;
  return 0;
}

int tl_data_check_enough(int64_t n_chunks, int64_t num_steps, int64_t samples_per_step, const char *what) {
  if (num_steps < 0 || samples_per_step < 1)
    return tl_fail("%s: num_steps %lld and samples per step %lld: expected >= 0 and >= 1", what,
                   (long long)num_steps, (long long)samples_per_step);
  if (num_steps > INT64_MAX / samples_per_step)
    return tl_fail("%s: %lld steps x %lld samples per step is too large", what, (long long)num_steps,
                   (long long)samples_per_step);
  if (n_chunks < num_steps * samples_per_step)
    return tl_fail("%s: holds %lld chunks, but %lld steps x %lld samples per step need %lld (the data would "
                   "wrap around; use more data or fewer steps)",
                   what, (long long)n_chunks, (long long)num_steps, (long long)samples_per_step,
                   (long long)(num_steps * samples_per_step));
  return 0;
}
