/* Index selection and sorting with numpy 1.24's exact tie behaviour.
 *
 * The reference picks each cell's top-k tokens with np.argpartition(x, -k)
 * (an introselect) followed by np.argsort (a quicksort that is an insertion sort
 * below 17 elements). Where values tie (every token's probability change is 0 at
 * positions two prompts share; near-uniform rows print equal percentages), which
 * tokens it shows and in what order follow from those algorithms' swap orders, so
 * we run the same algorithms step by step. Only the index array is permuted; the
 * values stay in place. NaN sorts after everything, as in numpy. */
#include "analysis/analysis_internal.h"

/* numpy's order for floats: NaN is the largest value */
static inline int lt(float a, float b) { return a < b || (b != b && a == a); }

#define V(i) v[idx[i]]
#define SWAP(i, j)                                                                                                     \
  do {                                                                                                                 \
    int32_t t_ = idx[i];                                                                                               \
    idx[i] = idx[j];                                                                                                   \
    idx[j] = t_;                                                                                                       \
  } while (0)

static int msb(int64_t n) {
  int d = 0;
  while (n > 1) n >>= 1, d++;
  return d;
}

/* selection sort of the kth smallest into place, for kth near low */
static void dumb_select(const float *v, int32_t *idx, int64_t num, int64_t kth) {
  for (int64_t i = 0; i <= kth; i++) {
    int64_t mi = i;
    float mv = V(i);
    for (int64_t k = i + 1; k < num; k++)
      if (lt(V(k), mv)) mi = k, mv = V(k);
    SWAP(i, mi);
  }
}

/* orders idx[low], idx[mid], idx[high] so that the median sits at low and the
 * smallest at low + 1 (guards for the unguarded partition) */
static void median3_swap(const float *v, int32_t *idx, int64_t low, int64_t mid, int64_t high) {
  if (lt(V(high), V(mid))) SWAP(high, mid);
  if (lt(V(high), V(low))) SWAP(high, low);
  if (lt(V(low), V(mid))) SWAP(low, mid);
  SWAP(mid, low + 1);
}

/* index (0..4) of the median of idx[0..4], partly ordering them */
static int64_t median5(const float *v, int32_t *idx) {
  if (lt(V(1), V(0))) SWAP(1, 0);
  if (lt(V(4), V(3))) SWAP(4, 3);
  if (lt(V(3), V(0))) SWAP(3, 0);
  if (lt(V(4), V(1))) SWAP(4, 1);
  if (lt(V(2), V(1))) SWAP(2, 1);
  if (lt(V(3), V(2))) return lt(V(3), V(1)) ? 1 : 3;
  return 2;
}

static void unguarded_partition(const float *v, int32_t *idx, float pivot, int64_t *ll, int64_t *hh) {
  for (;;) {
    do (*ll)++;
    while (lt(V(*ll), pivot));
    do (*hh)--;
    while (lt(pivot, V(*hh)));
    if (*hh < *ll) break;
    SWAP(*ll, *hh);
  }
}

static void introselect(const float *v, int32_t *idx, int64_t num, int64_t kth);

/* median of medians of five (the linear-time fallback); returns its position */
static int64_t median_of_median5(const float *v, int32_t *idx, int64_t num) {
  int64_t nmed = num / 5;
  for (int64_t i = 0, sub = 0; i < nmed; i++, sub += 5) {
    int64_t m = median5(v, idx + sub);
    SWAP(sub + m, i);
  }
  if (nmed > 2) introselect(v, idx, nmed, nmed / 2);
  return nmed / 2;
}

static void introselect(const float *v, int32_t *idx, int64_t num, int64_t kth) {
  int64_t low = 0, high = num - 1;
  if (kth - low < 3) {
    dumb_select(v, idx + low, high - low + 1, kth - low);
    return;
  }
  if (kth == num - 1) { /* the maximum: the last of equal maxima */
    int64_t mi = low;
    float mv = V(low);
    for (int64_t k = low + 1; k < num; k++)
      if (!lt(V(k), mv)) mi = k, mv = V(k);
    SWAP(kth, mi);
    return;
  }
  int depth = msb(num) * 2;
  while (low + 1 < high) {
    int64_t ll = low + 1, hh = high;
    if (depth > 0 || hh - ll < 5) {
      median3_swap(v, idx, low, low + (high - low) / 2, high);
    } else {
      int64_t mid = ll + median_of_median5(v, idx + ll, hh - ll);
      SWAP(mid, low);
      ll--, hh++;
    }
    depth--;
    unguarded_partition(v, idx, V(low), &ll, &hh);
    SWAP(low, hh);
    if (hh >= kth) high = hh - 1;
    if (hh <= kth) low = ll;
  }
  if (low + 1 == high && lt(V(high), V(low))) SWAP(high, low);
}

void tl_np_argpartition(const float *v, int32_t *idx, int64_t n, int64_t kth) {
  for (int64_t i = 0; i < n; i++) idx[i] = (int32_t)i;
  if (n > 1) introselect(v, idx, n, kth);
}

/* heap sort of idx[0..n) by value: numpy's fallback when quicksort recurses too deep */
static void aheapsort(const float *v, int32_t *tosort, int64_t n) {
  int32_t *a = tosort - 1; /* 1-based */
  int64_t i, j, l;
  int32_t tmp;
  for (l = n >> 1; l > 0; --l) {
    tmp = a[l];
    for (i = l, j = l << 1; j <= n;) {
      if (j < n && lt(v[a[j]], v[a[j + 1]])) j += 1;
      if (lt(v[tmp], v[a[j]])) a[i] = a[j], i = j, j += j;
      else break;
    }
    a[i] = tmp;
  }
  for (; n > 1;) {
    tmp = a[n];
    a[n] = a[1];
    n -= 1;
    for (i = 1, j = 2; j <= n;) {
      if (j < n && lt(v[a[j]], v[a[j + 1]])) j++;
      if (lt(v[tmp], v[a[j]])) a[i] = a[j], i = j, j += j;
      else break;
    }
    a[i] = tmp;
  }
}

#define SMALL_QUICKSORT 15
#define QS_STACK 128

void tl_np_argsort(const float *v, int32_t *idx, int64_t num) {
  for (int64_t i = 0; i < num; i++) idx[i] = (int32_t)i;
  if (num < 2) return;
  int32_t *pl = idx, *pr = idx + num - 1;
  int32_t *stack[QS_STACK], **sp = stack;
  int depth[QS_STACK], *pd = depth;
  int cdepth = msb(num) * 2;
  for (;;) {
    if (cdepth < 0) {
      aheapsort(v, pl, pr - pl + 1);
      goto pop;
    }
    while (pr - pl > SMALL_QUICKSORT) {
      int32_t *pm = pl + ((pr - pl) >> 1), *pi, *pj, t;
#define ISWAP(a, b) (t = (a), (a) = (b), (b) = t)
      if (lt(v[*pm], v[*pl])) ISWAP(*pm, *pl);
      if (lt(v[*pr], v[*pm])) ISWAP(*pr, *pm);
      if (lt(v[*pm], v[*pl])) ISWAP(*pm, *pl);
      float vp = v[*pm];
      pi = pl;
      pj = pr - 1;
      ISWAP(*pm, *pj);
      for (;;) {
        do ++pi;
        while (lt(v[*pi], vp));
        do --pj;
        while (lt(vp, v[*pj]));
        if (pi >= pj) break;
        ISWAP(*pi, *pj);
      }
      ISWAP(*pi, *(pr - 1));
#undef ISWAP
      /* the larger part waits on the stack */
      if (pi - pl < pr - pi) {
        *sp++ = pi + 1;
        *sp++ = pr;
        pr = pi - 1;
      } else {
        *sp++ = pl;
        *sp++ = pi - 1;
        pl = pi + 1;
      }
      *pd++ = --cdepth;
    }
    for (int32_t *pi = pl + 1; pi <= pr; ++pi) { /* insertion sort (stable) */
      int32_t vi = *pi, *pj = pi, *pk = pi - 1;
      float vp = v[vi];
      while (pj > pl && lt(vp, v[*pk])) *pj-- = *pk--;
      *pj = vi;
    }
  pop:
    if (sp == stack) break;
    pr = *(--sp);
    pl = *(--sp);
    cdepth = *(--pd);
  }
}

int tl_np_topk(const float *v, int64_t n, int k, int32_t *scratch, int32_t *out) {
  if (k > n) k = (int)n;
  if (k <= 0) return 0;
  tl_np_argpartition(v, scratch, n, n - k);
  /* then argsort(-values of the last k) */
  float neg[TL_TRAJ_TOPK_MAX];
  int32_t order[TL_TRAJ_TOPK_MAX];
  for (int j = 0; j < k; j++) neg[j] = -v[scratch[n - k + j]];
  tl_np_argsort(neg, order, k);
  for (int j = 0; j < k; j++) out[j] = scratch[n - k + order[j]];
  return k;
}
