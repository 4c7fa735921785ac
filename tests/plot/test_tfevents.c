/* TensorBoard event writer (tlens/tfevents.h): CRC-32C check values of RFC 3720
 * (B.4) and the standard "123456789", the record mask, where --tensorboard and
 * --wandb put the files, and a file of known scalars written to $WORK/api for
 * check_tfevents.py to read back with protobuf (with the list it must find in
 * $WORK/api.expected.json). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tl_test.h"
#include "tlens/core.h"
#include "tlens/tfevents.h"

static void test_crc(void) {
  unsigned char b[32];
  CHECK(tl_crc32c(0, "123456789", 9) == 0xe3069283u);
  memset(b, 0, 32);
  CHECK(tl_crc32c(0, b, 32) == 0x8a9136aau);
  memset(b, 0xff, 32);
  CHECK(tl_crc32c(0, b, 32) == 0x62a8ab43u);
  for (int i = 0; i < 32; i++) b[i] = (unsigned char)i;
  CHECK(tl_crc32c(0, b, 32) == 0x46dd794eu);
  for (int i = 0; i < 32; i++) b[i] = (unsigned char)(31 - i);
  CHECK(tl_crc32c(0, b, 32) == 0x113fdb5cu);
  /* in pieces, the same */
  CHECK(tl_crc32c(tl_crc32c(0, "1234", 4), "56789", 5) == 0xe3069283u);
  CHECK(tl_crc32c(0, "", 0) == 0);
  /* the mask rotates right by 15 and adds the constant */
  CHECK(tl_tfrecord_mask(0) == 0xa282ead8u);
  CHECK(tl_tfrecord_mask(1) == (0x00020000u + 0xa282ead8u));
  CHECK(tl_tfrecord_mask(0x8000u) == 1u + 0xa282ead8u);
}

static void test_dir(void) {
  struct {
    const char *output, *tensorboard, *wandb, *want;
  } cases[] = {
      {"out", NULL, NULL, NULL},
      {"out", "tb", NULL, "tb"},
      {"out", NULL, "run1", "out/tensorboard/run1"},
      {"out", "tb", "run1", "tb"},
      {"out", NULL, "a/b", "out/tensorboard/a_b"},
      {"out", NULL, "..", "out/tensorboard/_.."},
      {"out", NULL, "", "out/tensorboard/_"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    char *d = tl_tfevents_dir(cases[k].output, cases[k].tensorboard, cases[k].wandb);
    if (!cases[k].want) CHECK(d == NULL);
    else CHECKF(d && !strcmp(d, cases[k].want), "case %zu: %s", k, d ? d : "(null)");
    free(d);
  }
}

/* scalars of every kind of value a float holds, and steps a varint must carry */
static void test_file(const char *work) {
  char *dir = tl_path_join(work, "api"), *exp = tl_path_join(work, "api.expected.json");
  tl_tfevents w;
  CHECK(tl_tfevents_open(&w, dir) == 0);
  CHECK(strstr(w.path, "/events.out.tfevents.") != NULL);
  struct {
    long long step;
    const char *tag;
    double v;
  } s[] = {{0, "loss/input", 1.5},      {1, "loss/0.ffn", 0.000123}, {127, "lr", 0.1},
           {128, "grad_norm", 3.25e10}, {300, "odd tag/with space", -2}, {1LL << 40, "big step", 7},
           {5, "tokens_per_s", 0},      {6, "nan", NAN},             {7, "inf", INFINITY}, {-3, "negative step", 1}};
  /* what the reader must find: [step, tag, value, wall_time] (NaN and Infinity as
   * Python's json module reads them) */
  FILE *f = fopen(exp, "w");
  fprintf(f, "[");
  for (size_t k = 0; k < sizeof s / sizeof s[0]; k++) {
    double t = 1700000000.25 + (double)k;
    CHECK(tl_tfevents_scalar(&w, t, s[k].step, s[k].tag, s[k].v) == 0);
    char v[32];
    if (isnan(s[k].v)) snprintf(v, sizeof v, "NaN");
    else if (isinf(s[k].v)) snprintf(v, sizeof v, "Infinity");
    else snprintf(v, sizeof v, "%.17g", s[k].v);
    fprintf(f, "%s[%lld, \"%s\", %s, %.17g]", k ? ", " : "", s[k].step, s[k].tag, v, t);
  }
  fprintf(f, "]\n");
  fclose(f);
  CHECK(tl_tfevents_close(&w) == 0);
  /* a second file in the same second gets another name */
  tl_tfevents w2;
  char *dir2 = tl_path_join(work, "two");
  CHECK(tl_tfevents_open(&w, dir2) == 0 && tl_tfevents_open(&w2, dir2) == 0);
  CHECK(strcmp(w.path, w2.path) != 0);
  CHECK(tl_tfevents_close(&w) == 0 && tl_tfevents_close(&w2) == 0);
  /* a folder that cannot be made */
  CHECK(tl_tfevents_open(&w, "/proc/no/such") == -1);
  free(dir2);
  free(exp);
  free(dir);
}

int main(void) {
  const char *work = getenv("WORK");
  if (!work) work = ".";
  tl_mkdirs(work);
  test_crc();
  test_dir();
  test_file(work);
  return tl_test_finish("test_tfevents");
}
