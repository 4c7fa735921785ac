/* Core checks against independent references: FIPS 180-4 / zip CRC test vectors,
 * IEEE half / bfloat16 encodings worked by hand, a safetensors fixture written by
 * HF transformers, and the option parser's documented behaviour. */
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "tl_test.h"
#include "tlens/core.h"
#include "tlens/safetensors.h"

static void test_hashes(void) {
  char hex[65];
  tl_sha256_hex("abc", 3, hex);
  CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
  tl_sha256_hex("", 0, hex);
  CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
  const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  tl_sha256_hex(m, strlen(m), hex);
  CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
  /* streaming in odd pieces gives the same digest */
  tl_sha256 s;
  unsigned char d[32];
  tl_sha256_init(&s);
  for (size_t i = 0; i < strlen(m); i += 5) tl_sha256_update(&s, m + i, strlen(m) - i < 5 ? strlen(m) - i : 5);
  tl_sha256_final(&s, d);
  tl_hex(d, 32, hex);
  CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
  CHECK(tl_crc32(0, "123456789", 9) == 0xCBF43926u);
  /* the 8-bytes-at-a-time path against a plain bitwise CRC, at every length and split */
  unsigned char buf[300];
  for (int i = 0; i < 300; i++) buf[i] = (unsigned char)(i * 37 + 11);
  int bad = 0;
  for (int n = 0; n <= 300; n += 7) {
    uint32_t ref = 0xffffffffu;
    for (int i = 0; i < n; i++) {
      ref ^= buf[i];
      for (int k = 0; k < 8; k++) ref = ref & 1 ? 0xedb88320u ^ (ref >> 1) : ref >> 1;
    }
    ref = ~ref;
    uint32_t split = tl_crc32(tl_crc32(0, buf, (size_t)n / 3), buf + n / 3, (size_t)(n - n / 3));
    if (tl_crc32(0, buf, (size_t)n) != ref || split != ref) bad++;
  }
  CHECK(bad == 0);
}

static void test_dtypes(void) {
  /* half: 1.0 = 0x3c00, -2 = 0xc000, 65504 = 0x7bff, smallest subnormal 2^-24 = 0x0001 */
  CHECK(tl_f16_to_f32(0x3c00) == 1.0f);
  CHECK(tl_f16_to_f32(0xc000) == -2.0f);
  CHECK(tl_f16_to_f32(0x7bff) == 65504.0f);
  CHECK(tl_f16_to_f32(0x0001) == 5.9604644775390625e-8f);
  CHECK(tl_f32_to_f16(1.0f) == 0x3c00);
  CHECK(tl_f32_to_f16(65504.0f) == 0x7bff);
  CHECK(tl_f32_to_f16(65520.0f) == 0x7c00);    /* halfway to 65536 rounds to even: inf */
  CHECK(tl_f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00); /* tie, rounds to even mantissa 0 */
  CHECK(tl_f32_to_f16(1.0f + 3.0f / 2048) == 0x3c02); /* tie, rounds up to even mantissa 2 */
  CHECK(tl_f32_to_f16(5.9604644775390625e-8f) == 0x0001);
  /* every half value round-trips through float */
  int bad = 0;
  for (uint32_t h = 0; h < 65536; h++) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue; /* NaNs */
    if (tl_f32_to_f16(tl_f16_to_f32((uint16_t)h)) != h) bad++;
  }
  CHECK(bad == 0);
  CHECK(tl_bf16_to_f32(0x3f80) == 1.0f);
  CHECK(tl_f32_to_bf16(1.0f) == 0x3f80);
  CHECK(tl_f32_to_bf16(1.00390625f) == 0x3f80); /* 1 + 2^-8: tie, to even */
  CHECK(tl_f32_to_bf16(1.01171875f) == 0x3f82); /* 1 + 3*2^-8: tie, to even (up) */
  tl_dtype t;
  CHECK(tl_dtype_from_name("BF16", &t) == 0 && t == TL_BF16);
  CHECK(tl_dtype_from_name("F8", &t) != 0);
}

static void test_safetensors(const char *work) {
  char path[4096];
  snprintf(path, sizeof path, "%s/golden/gpt2/forward.safetensors", tl_test_fixtures());
  tl_safetensors st;
  CHECK(tl_st_open(&st, path) == 0);
  const tl_st_tensor *ids = tl_st_find(&st, "input_ids");
  CHECK(ids && ids->ndim == 2 && ids->shape[0] == 3 && ids->shape[1] == 20);
  const tl_st_tensor *h0 = tl_st_find(&st, "hidden_states.0");
  CHECK(h0 && h0->dtype == TL_F32 && h0->ndim == 3 && h0->shape[2] == 64);
  float *h = NULL;
  int64_t want[3] = {3, 20, 64}, wrong[3] = {3, 21, 64};
  CHECK(tl_st_get_f32(&st, "hidden_states.0", 3, want, &h) == 0);
  CHECK(h && !memcmp(h, h0->data, 3 * 20 * 64 * 4));
  free(h);
  CHECK(tl_st_get_f32(&st, "hidden_states.0", 3, wrong, &h) != 0);
  CHECK(strstr(tl_errmsg(), "has shape [3, 20, 64], expected [3, 21, 64]") != NULL);
  CHECK(tl_st_get_f32(&st, "nope", -1, NULL, &h) != 0 && strstr(tl_errmsg(), "'nope' is missing"));

  /* writer -> reader round trip, with metadata */
  tl_st_writer *w = tl_st_writer_new();
  int64_t shp[2] = {2, 3};
  float vals[6] = {1, -2, 3.5f, 0, 1e-30f, -0.0f};
  uint16_t halves[6];
  tl_from_f32(halves, TL_F16, vals, 6);
  tl_st_writer_add(w, "a", TL_F32, 2, shp, vals);
  tl_st_writer_add(w, "b", TL_F16, 2, shp, halves);
  tl_st_writer_meta(w, "k", "v");
  char out[4096];
  snprintf(out, sizeof out, "%s/rt.safetensors", work);
  CHECK(tl_st_writer_save(w, out) == 0);
  tl_st_writer_free(w);
  tl_safetensors rt;
  CHECK(tl_st_open(&rt, out) == 0);
  CHECK(tl_st_meta(&rt, "k") && !strcmp(tl_st_meta(&rt, "k"), "v"));
  float *a = NULL, *b = NULL;
  CHECK(tl_st_get_f32(&rt, "a", 2, shp, &a) == 0 && !memcmp(a, vals, sizeof vals));
  CHECK(tl_st_get_f32(&rt, "b", 2, shp, &b) == 0 && b[2] == 3.5f && b[4] == 0.0f);
  free(a);
  free(b);
  tl_st_close(&rt);

  /* corruptions of a real file: each must be a one-line error naming the file */
  size_t n = st.map.size;
  unsigned char *bytes = malloc(n);
  memcpy(bytes, st.map.data, n);
  tl_st_close(&st);
  struct {
    const char *what;
    size_t len;
    void (*mutate)(unsigned char *, size_t);
    const char *expect;
  } cases[] = {
      {"truncated to 5 bytes", 5, NULL, "truncated"},
      {"header cut short", 200, NULL, "past the end"},
      {"data cut short", 0, NULL, "out of range"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    size_t len = cases[c].len ? cases[c].len : n - 100;
    snprintf(out, sizeof out, "%s/bad%zu.safetensors", work, c);
    FILE *f = fopen(out, "wb");
    fwrite(bytes, 1, len, f);
    fclose(f);
    tl_safetensors bad;
    int rc = tl_st_open(&bad, out);
    CHECKF(rc != 0 && strstr(tl_errmsg(), cases[c].expect) && strstr(tl_errmsg(), out) &&
               !strchr(tl_errmsg(), '\n'),
           "%s: %s", cases[c].what, tl_errmsg());
  }
  /* a header that is not JSON */
  memset(bytes + 8, '#', 4);
  snprintf(out, sizeof out, "%s/badjson.safetensors", work);
  FILE *f = fopen(out, "wb");
  fwrite(bytes, 1, n, f);
  fclose(f);
  tl_safetensors bad;
  CHECK(tl_st_open(&bad, out) != 0 && strstr(tl_errmsg(), "not a JSON object"));
  free(bytes);
}

/* safetensors data offsets need only be multiples of 1: after a 3-byte tensor
 * every other one starts at an odd address, and each must still read back exactly
 * (the sanitizer build also checks that no load is misaligned). */
static int64_t int_case(tl_dtype t, int i) {
  const int64_t signed_vals[3] = {-7, 0, 12345}, unsigned_vals[3] = {7, 0, 12345};
  return t == TL_U16 || t == TL_U64 ? unsigned_vals[i] : signed_vals[i];
}

static void test_unaligned(const char *work) {
  const float fv[5] = {1.5f, -2.0f, 0.25f, 448.0f, -0.0f}; /* exact in F16, BF16, F32, F64 */
  const tl_dtype fts[] = {TL_F16, TL_BF16, TL_F32, TL_F64};
  const tl_dtype its[] = {TL_I16, TL_U16, TL_I32, TL_I64, TL_U64};
  const char *fnames[] = {"f16", "bf16", "f32", "f64"};
  const char *inames[] = {"i16", "u16", "i32", "i64", "u64"};
  tl_st_writer *w = tl_st_writer_new();
  const uint8_t pad[3] = {1, 2, 3};
  int64_t shp3[1] = {3}, shp5[1] = {5};
  tl_st_writer_add(w, "pad", TL_U8, 1, shp3, pad);
  unsigned char buf[64];
  for (int k = 0; k < 4; k++) {
    tl_from_f32(buf, fts[k], fv, 5);
    tl_st_writer_add(w, fnames[k], fts[k], 1, shp5, buf);
  }
  for (int k = 0; k < 5; k++) {
    size_t es = tl_dtype_size(its[k]);
    for (int i = 0; i < 3; i++)
      for (size_t b = 0; b < es; b++) /* little-endian */
        buf[i * es + b] = (unsigned char)((uint64_t)int_case(its[k], i) >> (8 * b));
    tl_st_writer_add(w, inames[k], its[k], 1, shp3, buf);
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/unaligned.safetensors", work);
  CHECK(tl_st_writer_save(w, path) == 0);
  tl_st_writer_free(w);
  tl_safetensors st;
  CHECK(tl_st_open(&st, path) == 0);
  for (int k = 0; k < 4; k++) {
    const tl_st_tensor *t = tl_st_find(&st, fnames[k]);
    CHECKF(t && (uintptr_t)t->data % tl_dtype_size(fts[k]) != 0, "%s is not misaligned", fnames[k]);
    float *f = NULL;
    CHECKF(tl_st_get_f32(&st, fnames[k], 1, shp5, &f) == 0 && !memcmp(f, fv, sizeof fv), "%s", fnames[k]);
    free(f);
  }
  for (int k = 0; k < 5; k++) {
    const tl_st_tensor *t = tl_st_find(&st, inames[k]);
    CHECKF(t && (uintptr_t)t->data % tl_dtype_size(its[k]) != 0, "%s is not misaligned", inames[k]);
    int64_t *v = NULL;
    CHECKF(tl_st_get_i64(&st, inames[k], 1, shp3, &v) == 0, "%s", inames[k]);
    for (int i = 0; v && i < 3; i++)
      CHECKF(v[i] == int_case(its[k], i), "%s[%d] = %lld", inames[k], i, (long long)v[i]);
    free(v);
  }
  tl_st_close(&st);
}

static void test_args(const char *work) {
  char *model = NULL;
  long steps = 250;
  double lr = 1.0;
  bool shuffle = true, bias_only = false;
  tl_opt opts[] = {
      {"model.name|model", 0, TL_OPT_STR, &model, "model", 0, 0, false},
      {"num_steps", 0, TL_OPT_INT, &steps, "steps", 1, 1e9, false},
      {"lr_scale", 0, TL_OPT_FLOAT, &lr, "lr", 0, 0, false},
      {"dataloader_shuffle", 0, TL_OPT_BOOL, &shuffle, "shuffle", 0, 0, false},
      {"bias_only", 0, TL_OPT_BOOL, &bias_only, "bias", 0, 0, false},
  };
  char cfg[4096];
  snprintf(cfg, sizeof cfg, "%s/cfg.json", work);
  FILE *f = fopen(cfg, "w");
  fprintf(f, "{\"_comment\": \"x\", \"model.name\": \"from-config\", \"num_steps\": 7, \"lr_scale\": 0.5}\n");
  fclose(f);
  char *argv1[] = {"train", "--config", cfg, "--num_steps=9", "--nodataloader_shuffle", "--bias_only", NULL};
  CHECK(tl_args_parse(opts, 5, 6, argv1, "u", true, NULL, NULL) == TL_ARGS_OK);
  CHECK(model && !strcmp(model, "from-config"));
  CHECK(steps == 9 && lr == 0.5 && !shuffle && bias_only);
  char *argv2[] = {"train", "--num_steps", "x12", NULL};
  CHECK(tl_args_parse(opts, 5, 3, argv2, "u", true, NULL, NULL) == TL_ARGS_ERROR);
  CHECK(strstr(tl_errmsg(), "--num_steps: expected an integer, got 'x12'"));
  char *argv3[] = {"train", "--num_steps", "0", NULL};
  CHECK(tl_args_parse(opts, 5, 3, argv3, "u", true, NULL, NULL) == TL_ARGS_ERROR);
  char *argv4[] = {"train", "--bogus", NULL};
  CHECK(tl_args_parse(opts, 5, 2, argv4, "u", true, NULL, NULL) == TL_ARGS_ERROR &&
        strstr(tl_errmsg(), "unknown option '--bogus'"));
  char *argv5[] = {"train", "--model", NULL};
  CHECK(tl_args_parse(opts, 5, 2, argv5, "u", true, NULL, NULL) == TL_ARGS_ERROR);
  f = fopen(cfg, "w");
  fprintf(f, "{\"num_stepz\": 3}");
  fclose(f);
  char *argv6[] = {"train", "--config", cfg, NULL};
  CHECK(tl_args_parse(opts, 5, 3, argv6, "u", true, NULL, NULL) == TL_ARGS_ERROR &&
        strstr(tl_errmsg(), "unknown key 'num_stepz'"));
  tl_args_free(opts, 5);
}

int main(void) {
  const char *work = getenv("WORK") ? getenv("WORK") : "/tmp/tlens-test-core";
  tl_mkdirs(work);
  test_hashes();
  test_dtypes();
  test_safetensors(work);
  test_unaligned(work);
  test_args(work);
  return tl_test_finish("test_core");
}
