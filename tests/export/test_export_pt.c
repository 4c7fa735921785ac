/* params.pt reading and writing.
 *
 * References, none of them our own reader:
 *  - the fixture lenses written by torch.save (golden/<m>/lens/params.pt, fp32): the
 *    storage bytes are located in the file by scanning for their local zip headers
 *    (a few lines here, independent of the library's zip parser) and are the
 *    expected values; the fp16/bf16 fixtures (golden/llama/lens_fp16, lens_bf16) must
 *    equal those fp32 values rounded to nearest even;
 *  - the structure of what we write is checked by an independent walk over the zip
 *    records (signatures, names, 64-byte alignment, CRCs by a bitwise CRC-32 written
 *    here, central directory, end record) and against a hand-assembled pickle;
 *  - round trips are bit-exact;
 *  - bad inputs (wrong magic, truncation, corruption, hostile pickles) give one-line
 *    errors. */
#include <string.h>
#include <unistd.h>

#include "tl_test.h"
#include "tlens/export.h"

static const char *fx;

/* ---------- independent helpers ---------- */

static uint32_t crc32_bitwise(const unsigned char *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
  }
  return ~c;
}
static unsigned u16(const unsigned char *p) { return p[0] | p[1] << 8; }
static uint32_t u32(const unsigned char *p) { return (uint32_t)u16(p) | (uint32_t)u16(p + 2) << 16; }
static uint64_t u64(const unsigned char *p) { return (uint64_t)u32(p) | (uint64_t)u32(p + 4) << 32; }

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(*n + 1);
  if (fread(b, 1, *n, f) != *n) *n = 0;
  fclose(f);
  return b;
}

/* data of the local entry named `name`, found by scanning for its local header */
static const unsigned char *scan_entry(const unsigned char *b, size_t n, const char *name) {
  size_t nl = strlen(name);
  for (size_t p = 0; p + 30 + nl <= n; p++) {
    if (u32(b + p) == 0x04034b50u && u16(b + p + 26) == nl && !memcmp(b + p + 30, name, nl))
      return b + p + 30 + nl + u16(b + p + 28);
  }
  return NULL;
}

static int one_line_error(const char *must_contain) {
  const char *e = tl_errmsg();
  int ok = e[0] && !strchr(e, '\n') && (!must_contain || strstr(e, must_contain));
  if (!ok) fprintf(stderr, "error message: '%s' (expected to contain '%s')\n", e, must_contain ? must_contain : "");
  return ok;
}

/* ---------- fixtures written by torch ---------- */

static void check_fixture(const char *model) {
  char path[4096];
  snprintf(path, sizeof path, "%s/golden/%s/lens/params.pt", fx, model);
  size_t n;
  unsigned char *raw = slurp(path, &n);
  CHECK(raw != NULL);
  tl_pt_file f;
  CHECK(tl_pt_open(&f, path) == 0);
  CHECK(f.n == 6);
  const char *names[6] = {"0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias"};
  for (int i = 0; i < 6 && i < f.n; i++) {
    const tl_pt_tensor *t = &f.t[i];
    CHECKF(!strcmp(t->name, names[i]), "key %d is %s", i, t->name);
    int w = i % 2 == 0;
    CHECK(t->dtype == TL_F32 && t->ndim == (w ? 2 : 1) && t->shape[0] == 64 && (!w || t->shape[1] == 64));
    float *v = malloc((size_t)t->numel * 4);
    tl_pt_to_f32(t, v);
    /* torch stored tensor i in storage "i" (pickletools listing of the fixture) */
    char en[64];
    snprintf(en, sizeof en, "params/data/%d", i);
    const unsigned char *ref = scan_entry(raw, n, en);
    CHECK(ref && t->numel == (w ? 4096 : 64) && !memcmp(v, ref, (size_t)t->numel * 4));
    free(v);
  }
  tl_pt_close(&f);
  free(raw);
}

static void check_fixture_half(const char *dir, tl_dtype dt) {
  char path[4096];
  snprintf(path, sizeof path, "%s/golden/llama/lens/params.pt", fx);
  tl_pt_file f32, f16;
  CHECK(tl_pt_open(&f32, path) == 0);
  snprintf(path, sizeof path, "%s/golden/llama/%s/params.pt", fx, dir);
  CHECK(tl_pt_open(&f16, path) == 0);
  CHECK(f16.n == 6);
  for (int i = 0; i < 6 && i < f16.n; i++) {
    const tl_pt_tensor *a = &f32.t[i], *b = &f16.t[i];
    CHECK(!strcmp(a->name, b->name) && b->dtype == dt && b->ndim == a->ndim && b->numel == a->numel);
    float *va = malloc((size_t)a->numel * 4), *vb = malloc((size_t)a->numel * 4);
    tl_pt_to_f32(a, va);
    tl_pt_to_f32(b, vb);
    long bad = 0;
    for (int64_t k = 0; k < a->numel; k++) {
      float r = dt == TL_F16 ? tl_f16_to_f32(tl_f32_to_f16(va[k])) : tl_bf16_to_f32(tl_f32_to_bf16(va[k]));
      if (memcmp(&r, &vb[k], 4)) bad++;
    }
    CHECKF(bad == 0, "%s %s: %ld values differ from the rounded fp32 lens", dir, a->name, bad);
    free(va);
    free(vb);
  }
  tl_pt_close(&f32);
  tl_pt_close(&f16);
}

/* ---------- what we write ---------- */

/* walks the archive record by record without the library's parser */
static void check_structure(const unsigned char *b, size_t n, int nt, int zip64) {
  const char *expect[16];
  char names[16][32];
  int ne = 0;
  expect[ne++] = "params/data.pkl";
  expect[ne++] = "params/byteorder";
  for (int i = 0; i < nt; i++) {
    snprintf(names[i], 32, "params/data/%d", i);
    expect[ne++] = names[i];
  }
  expect[ne++] = "params/version";
  size_t p = 0;
  uint64_t hdr[16];
  for (int i = 0; i < ne; i++) {
    CHECK(p + 30 <= n && u32(b + p) == 0x04034b50u);
    if (!(p + 30 <= n && u32(b + p) == 0x04034b50u)) return;
    hdr[i] = p;
    unsigned nl = u16(b + p + 26), el = u16(b + p + 28);
    CHECK(u16(b + p + 8) == 0);  /* stored */
    CHECK(u16(b + p + 6) == 0);  /* no flags, no data descriptor */
    CHECKF(nl == strlen(expect[i]) && !memcmp(b + p + 30, expect[i], nl), "entry %d name", i);
    uint64_t size = u32(b + p + 22);
    if (zip64) { /* zip64 extra first: id 1, 16 bytes of sizes */
      CHECK(size == 0xffffffffu && u16(b + p + 30 + nl) == 1 && u16(b + p + 32 + nl) == 16);
      size = u64(b + p + 34 + nl);
    }
    size_t data = p + 30 + nl + el;
    CHECKF(data % 64 == 0, "entry %s data at %zu is not 64-byte aligned", expect[i], data);
    CHECK(data + size <= n);
    CHECKF(crc32_bitwise(b + data, (size_t)size) == u32(b + p + 14), "entry %s CRC", expect[i]);
    if (i == 1) CHECK(size == 6 && !memcmp(b + data, "little", 6));
    if (i == ne - 1) CHECK(size == 2 && !memcmp(b + data, "3\n", 2));
    p = data + (size_t)size;
  }
  /* central directory right after the data, one record per entry, same order */
  size_t cd = p;
  for (int i = 0; i < ne; i++) {
    CHECK(p + 46 <= n && u32(b + p) == 0x02014b50u);
    if (!(p + 46 <= n && u32(b + p) == 0x02014b50u)) return;
    unsigned nl = u16(b + p + 28), el = u16(b + p + 30), cl = u16(b + p + 32);
    CHECK(nl == strlen(expect[i]) && !memcmp(b + p + 46, expect[i], nl));
    uint64_t off = u32(b + p + 42);
    if (zip64) { /* extra: id 1 with usize, csize, offset */
      CHECK(off == 0xffffffffu && el == 28 && u16(b + p + 46 + nl) == 1);
      off = u64(b + p + 46 + nl + 20);
    }
    CHECK(off == hdr[i]);
    CHECK(u32(b + p + 16) == u32(b + hdr[i] + 14)); /* same CRC as the local header */
    p += 46 + nl + el + cl;
  }
  size_t cd_size = p - cd;
  if (zip64) {
    CHECK(p + 56 + 20 <= n && u32(b + p) == 0x06064b50u);
    CHECK(u64(b + p + 32) == (uint64_t)ne && u64(b + p + 40) == cd_size && u64(b + p + 48) == cd);
    CHECK(u32(b + p + 56) == 0x07064b50u && u64(b + p + 64) == p);
    p += 76;
  }
  CHECK(p + 22 == n && u32(b + p) == 0x06054b50u);
  CHECK(u16(b + p + 10) == ne && u32(b + p + 12) == cd_size && u32(b + p + 16) == cd);
}

/* data.pkl for {"0.weight": [2,2], "0.bias": [2]} as torch.save would pickle it
 * (minus the _metadata attribute), assembled by hand from the pickle opcodes */
static const unsigned char expected_pickle[] =
    "\x80\x02"                                     /* PROTO 2 */
    "ccollections\nOrderedDict\nq\x00"             /* GLOBAL, BINPUT 0 */
    ")R("                                          /* EMPTY_TUPLE REDUCE MARK */
    "X\x08\x00\x00\x00" "0.weight"                 /* key */
    "ctorch._utils\n_rebuild_tensor_v2\nq\x01"     /* GLOBAL, BINPUT 1 */
    "(("                                           /* args, persistent id */
    "X\x07\x00\x00\x00" "storage"
    "ctorch\nFloatStorage\nq\x02"
    "X\x01\x00\x00\x00" "0"
    "X\x03\x00\x00\x00" "cpu"
    "K\x04" "tQ"                                   /* numel 4, TUPLE, BINPERSID */
    "K\x00" "K\x02K\x02\x86" "K\x02K\x01\x86"      /* offset, size, stride */
    "\x89h\x00)R" "tR"                             /* False, OrderedDict(), TUPLE REDUCE */
    "X\x06\x00\x00\x00" "0.bias" "h\x01(("
    "X\x07\x00\x00\x00" "storage" "h\x02"
    "X\x01\x00\x00\x00" "1" "X\x03\x00\x00\x00" "cpu" "K\x02" "tQ"
    "K\x00" "K\x02\x85" "K\x01\x85" "\x89h\x00)R" "tR"
    "u.";                                          /* SETITEMS STOP */

static void check_writer(const char *dir) {
  /* odd sizes and awkward values: -0, subnormal, huge, inf, nan */
  int L = 3, d = 5;
  float *w = malloc(sizeof(float) * (size_t)(L * (d * d + d)));
  uint32_t s = 12345;
  for (int i = 0; i < L * (d * d + d); i++) {
    s = s * 1664525u + 1013904223u;
    w[i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * 0.3f;
  }
  w[0] = -0.0f;
  w[1] = 1e-40f;
  w[2] = 3e38f;
  w[3] = INFINITY;
  w[4] = NAN;
  tl_pt_entry e[6];
  char names[6][16];
  for (int i = 0; i < L; i++) {
    snprintf(names[2 * i], 16, "%d.weight", i);
    snprintf(names[2 * i + 1], 16, "%d.bias", i);
    e[2 * i] = (tl_pt_entry){names[2 * i], 2, {d, d}, w + i * (d * d + d)};
    e[2 * i + 1] = (tl_pt_entry){names[2 * i + 1], 1, {d}, w + i * (d * d + d) + d * d};
  }
  tl_dtype dts[3] = {TL_F32, TL_F16, TL_BF16};
  for (int z64 = 0; z64 < 2; z64++)
    for (int k = 0; k < 3; k++) {
      char path[4096];
      snprintf(path, sizeof path, "%s/params.pt", dir);
      CHECK(tl_pt_save(path, e, 6, dts[k], z64 ? TL_ZIPW_FORCE_ZIP64 : 0) == 0);
      size_t n = 0;
      unsigned char *raw = slurp(path, &n);
      CHECK(raw != NULL);
      check_structure(raw, n, 6, z64);
      tl_pt_file f;
      CHECK(tl_pt_open(&f, path) == 0);
      CHECK(f.n == 6 && f.zip.zip64 == z64);
      for (int i = 0; i < 6 && i < f.n; i++) {
        const tl_pt_tensor *t = &f.t[i];
        CHECK(!strcmp(t->name, names[i]) && t->dtype == dts[k] && t->ndim == e[i].ndim && t->shape[0] == d);
        float *v = malloc((size_t)t->numel * 4);
        tl_pt_to_f32(t, v);
        long bad = 0;
        for (int64_t j = 0; j < t->numel; j++) {
          float r = e[i].data[j];
          if (dts[k] == TL_F16) r = tl_f16_to_f32(tl_f32_to_f16(r));
          if (dts[k] == TL_BF16) r = tl_bf16_to_f32(tl_f32_to_bf16(r));
          if (memcmp(&r, &v[j], 4) && !(isnan(r) && isnan(v[j]))) bad++;
        }
        CHECKF(bad == 0, "round trip %s dtype %d zip64 %d: %ld values differ", t->name, k, z64, bad);
        free(v);
      }
      tl_pt_close(&f);
      free(raw);
    }
  /* the pickle itself, byte for byte */
  float tiny[6] = {1, 2, 3, 4, 5, 6};
  tl_pt_entry te[2] = {{"0.weight", 2, {2, 2}, tiny}, {"0.bias", 1, {2}, tiny + 4}};
  tl_zipw *zw = tl_zipw_open_mem(0);
  CHECK(tl_pt_write(zw, "params", te, 2, TL_F32) == 0);
  unsigned char *mem;
  size_t mlen;
  CHECK(tl_zipw_finish(zw, &mem, &mlen) == 0);
  check_structure(mem, mlen, 2, 0);
  tl_zip z;
  CHECK(tl_zip_parse(&z, mem, mlen, "mem") == 0);
  const tl_zip_entry *pk = tl_zip_find(&z, "params/data.pkl");
  CHECK(pk && pk->size == sizeof expected_pickle - 1 && !memcmp(mem + pk->data_offset, expected_pickle, sizeof expected_pickle - 1));
  tl_zip_free(&z);
  free(mem);
  free(w);
}

/* ---------- bad inputs ---------- */

/* a memory archive "a/" with the given data.pkl and one 16-byte storage "a/data/0" */
static unsigned char *make_pt(const char *pkl, size_t len, size_t *out_len) {
  tl_zipw *zw = tl_zipw_open_mem(0);
  float st[4] = {1, 2, 3, 4};
  tl_zipw_add(zw, "a/data.pkl", pkl, len);
  tl_zipw_add(zw, "a/data/0", st, sizeof st);
  tl_zipw_add(zw, "a/version", "3\n", 2);
  unsigned char *mem = NULL;
  tl_zipw_finish(zw, &mem, out_len);
  return mem;
}

static void expect_bad_pickle(const char *pkl, size_t len, const char *msg) {
  size_t n;
  unsigned char *mem = make_pt(pkl, len, &n);
  tl_pt_file f;
  tl_clear_error();
  int rc = tl_pt_open_mem(&f, mem, n, "hostile.pt");
  CHECKF(rc == -1, "accepted a pickle that should fail with '%s'", msg);
  CHECK(one_line_error(msg));
  CHECK(strstr(tl_errmsg(), "hostile.pt") != NULL);
  if (rc == 0) tl_pt_close(&f);
  free(mem);
}
#define BAD(lit, msg) expect_bad_pickle(lit, sizeof(lit) - 1, msg)

/* ('storage', FloatStorage, '0', 'cpu', 4) then the tensor call with size/stride S */
#define PID "(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "0" "X\x03\x00\x00\x00" "cpuK\x04tQ"
#define REBUILD "ctorch._utils\n_rebuild_tensor_v2\n("
#define ODICT "ccollections\nOrderedDict\n"

static void check_bad_inputs(void) {
  /* a valid minimal state dict, as a control */
  {
    static const char ok[] = "\x80\x02" ODICT ")R(X\x01\x00\x00\x00w" REBUILD PID "K\x00K\x02K\x02\x86K\x02K\x01\x86\x89" ODICT ")RtRu.";
    size_t n;
    unsigned char *mem = make_pt(ok, sizeof ok - 1, &n);
    tl_pt_file f;
    CHECK(tl_pt_open_mem(&f, mem, n, "ok.pt") == 0);
    if (f.n == 1) {
      float v[4];
      tl_pt_to_f32(&f.t[0], v);
      CHECK(v[0] == 1 && v[3] == 4 && f.t[0].shape[0] == 2);
      tl_pt_close(&f);
    }
    free(mem);
  }
  BAD("\x80\x02" "cos\nsystem\nX\x02\x00\x00\x00ls\x85R.", "global 'os.system' is not allowed");
  BAD("\x80\x02" "cbuiltins\neval\n.", "global 'builtins.eval' is not allowed");
  BAD("\x80\x02" "(cos\nsystem\nX\x02\x00\x00\x00lsi.", "not allowed");
  BAD("\x80\x02" "(X\x02\x00\x00\x00lsios\nsystem\n.", "unsupported pickle opcode 0x69");
  BAD("\x80\x02" "]q\x00.", "holds a list");
  BAD("\x80\x02" "}X\x01\x00\x00\x00" "aK\x01s.", "is a int, expected a tensor");
  BAD("\x80\x02" "}X\xff\xff\xff\x7f", "truncated pickle");
  BAD("\x80\x02" "}", "no STOP");
  BAD("\x80\x02" "h\x05.", "memo index not defined");
  BAD("\x80\x02" "}r\x00\x00\x00\x10.", "memo index out of sequence");
  BAD("\x80\x02" "R.", "stack underflow");
  BAD("\x80\x02" "(R.", "stack underflow");
  BAD("\x80\x02" "t.", "MARK expected");
  BAD("\x80\x02" "\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x00.", "integer too large");
  BAD("\x80\x09.", "unsupported pickle protocol");
  BAD("\x80\x02" "ctorch\nFloatStorage\n)R.", "cannot be called");
  BAD("\x80\x02" ODICT "K\x01\x85R.", "OrderedDict() with arguments");
  /* persistent ids and tensors */
  BAD("\x80\x02" "(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "9" "X\x03\x00\x00\x00" "cpuK\x04tQ.", "missing from the archive");
  BAD("\x80\x02" "(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "0" "X\x03\x00\x00\x00" "cpuK\x05tQ.", "size does not match");
  BAD("\x80\x02" "(X\x07\x00\x00\x00storagectorch\nHalfStorage\nX\x01\x00\x00\x00" "0" "X\x03\x00\x00\x00" "cpuK\x04tQ.", "size does not match");
  BAD("\x80\x02" "(X\x03\x00\x00\x00" "fooK\x01tQ.", "persistent id");
  BAD("\x80\x02" REBUILD PID "K\x00K\x02K\x02\x86K\x01K\x02\x86\x89" ODICT ")RtR.", "non-contiguous");
  BAD("\x80\x02" REBUILD PID "K\x01K\x02K\x02\x86K\x02K\x01\x86\x89" ODICT ")RtR.", "past the end of its storage");
  BAD("\x80\x02" REBUILD PID "K\x00K\x02\x85K\x01K\x02\x86\x89" ODICT ")RtR.", "same length");
  BAD("\x80\x02" REBUILD PID "K\x00K\x02K\x02\x86K\x02K\x01\x86tR.", "6 or 7 arguments");

  /* zip level */
  tl_pt_file f;
  static const char junk[] = "this is not a zip file at all, just text that goes on";
  CHECK(tl_pt_open_mem(&f, junk, sizeof junk - 1, "junk.pt") == -1 && one_line_error("not a zip archive"));
  static const unsigned char legacy[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  CHECK(tl_pt_open_mem(&f, legacy, sizeof legacy, "legacy.pt") == -1 && one_line_error("legacy torch.save format"));
  CHECK(tl_pt_open_mem(&f, junk, 0, "empty.pt") == -1 && one_line_error("empty.pt"));
  char path[4096];
  snprintf(path, sizeof path, "%s/golden/llama/lens/params.pt", fx);
  size_t n;
  unsigned char *raw = slurp(path, &n);
  size_t cuts[] = {n - 1, n - 22, n - 100, n / 2, 700, 100, 30, 4, 1};
  for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
    tl_clear_error();
    int rc = tl_pt_open_mem(&f, raw, cuts[k], "cut.pt");
    CHECKF(rc == -1, "truncated to %zu bytes was accepted", cuts[k]);
    CHECK(one_line_error("cut.pt"));
    if (rc == 0) tl_pt_close(&f);
  }
  /* one flipped bit in a storage: the CRC catches it */
  unsigned char *bad = malloc(n);
  memcpy(bad, raw, n);
  bad[20000] ^= 0x10;
  CHECK(tl_pt_open_mem(&f, bad, n, "flip.pt") == -1 && one_line_error("CRC32"));
  /* a compressed entry */
  memcpy(bad, raw, n);
  size_t cd = 0;
  while (cd + 4 <= n && u32(bad + cd) != 0x02014b50u) cd++;
  CHECK(cd + 46 <= n);
  bad[cd + 10] = 8; /* central directory method of the first entry: deflate */
  CHECK(tl_pt_open_mem(&f, bad, n, "deflate.pt") == -1 && one_line_error("is compressed (method 8)"));
  free(bad);
  /* missing file */
  CHECK(tl_pt_open(&f, "/nonexistent/params.pt") == -1 && one_line_error("/nonexistent/params.pt"));
  free(raw);
}

int main(void) {
  fx = tl_test_fixtures();
  char dir[] = "/tmp/tlens_export_pt_XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  check_fixture("llama");
  check_fixture("gpt2");
  check_fixture_half("lens_fp16", TL_F16);
  check_fixture_half("lens_bf16", TL_BF16);
  check_writer(dir);
  check_bad_inputs();
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
  return tl_test_finish("export_pt");
}
