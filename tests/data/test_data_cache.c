/* Token cache: built once and reused (no re-tokenization), rebuilt when stale, truncated
 * or corrupt, never half-written on error; pre-tokenized safetensors input; contents
 * checked against the reference golden chunks. */
#include <dirent.h>
#include <math.h>
#include <unistd.h>

#include "data_work.h"
#include "tl_test.h"
#include "tlens/data.h"
#include "tlens/safetensors.h"

/* 1 when the dataset's ids equal the golden input_ids of `golden`. */
static int equals_golden(const char *cache, const char *golden) {
  tl_dataset *d;
  if (tl_data_open(&d, cache, 1) != 0) {
    fprintf(stderr, "%s\n", tl_errmsg());
    return 0;
  }
  tl_safetensors st;
  int ok = 0;
  if (tl_st_open(&st, golden) == 0) {
    const tl_st_tensor *t = tl_st_find(&st, "input_ids");
    int64_t N = t->shape[0], T = t->shape[1], *ref;
    if (tl_data_len(d) == N && tl_data_seq_len_of(d) == T && tl_st_get_i64(&st, "input_ids", 2, t->shape, &ref) == 0) {
      int64_t *idx = malloc((size_t)N * sizeof *idx);
      for (int64_t i = 0; i < N; i++) idx[i] = N - 1 - i; /* any order: reversed */
      int32_t *got = malloc((size_t)(N * T) * sizeof *got);
      ok = tl_data_gather(d, idx, N, got) == 0;
      for (int64_t i = 0; ok && i < N; i++)
        for (int64_t k = 0; k < T; k++) ok &= got[i * T + k] == ref[(N - 1 - i) * T + k];
      double want;
      ok &= tl_parse_double(tl_st_meta(&st, "nats_to_bpb"), &want) == 0 && tl_data_nats_to_bpb(d) == want;
      free(idx);
      free(got);
      free(ref);
    }
    tl_st_close(&st);
  }
  tl_data_close(d);
  return ok;
}

/* Files in dir whose name contains `part`. */
static int count_files(const char *dir, const char *part) {
  DIR *dh = opendir(dir);
  int n = 0;
  struct dirent *e;
  while (dh && (e = readdir(dh)))
    if (strstr(e->d_name, part)) n++;
  if (dh) closedir(dh);
  return n;
}

static void patch_file(const char *path, long off, const void *bytes, size_t n) {
  FILE *f = fopen(path, "r+b");
  fseek(f, off, off < 0 ? SEEK_END : SEEK_SET);
  fwrite(bytes, 1, n, f);
  fclose(f);
}

int main(void) {
  const char *fx = tl_test_fixtures();
  char *dir = work_dir("test_data_cache");
  char *cdir = tl_path_join(dir, "cache");
  char *golden = tl_sprintf("%s/data/chunks_gpt2_pile_128.safetensors", fx);
  tl_tokenizer *tok;
  char *p = tl_sprintf("%s/tokenizers/gpt2/tokenizer.json", fx);
  CHECKF(tl_tokenizer_load(&tok, p) == 0, "%s", tl_errmsg());
  free(p);

  /* a private copy of the corpus so it can be modified */
  char *raw;
  size_t rawn;
  p = tl_sprintf("%s/data/pile_text.jsonl", fx);
  CHECK(tl_read_file(p, &raw, &rawn) == 0);
  free(p);
  char *src = write_file(dir, "pile.jsonl", raw, rawn);

  tl_data_opts o;
  tl_data_opts_default(&o);
  CHECK(strcmp(o.text_column, "text") == 0 && o.max_seq_len == 2048);
  o.max_seq_len = 128;
  o.cache_dir = cdir;

  char *path = NULL, *path2 = NULL;
  int built = -1;
  CHECKF(tl_data_prepare(src, tok, &o, &path, &built) == 0, "%s", tl_errmsg());
  CHECK(built == 1);
  char *expect = tl_data_cache_path(src, tok, &o);
  CHECK(path && strcmp(path, expect) == 0);
  CHECK(equals_golden(path, golden));
  CHECK(count_files(cdir, ".tmp.") == 0);
  {
    tl_dataset *d;
    CHECK(tl_data_open(&d, path, 0) == 0);
    CHECK(tl_data_vocab_size(d) == 50257 && tl_data_len(d) == 43 && tl_data_seq_len_of(d) == 128);
    int64_t bad = 43;
    int32_t row[128];
    CHECK(tl_data_gather(d, &bad, 1, row) == -1 && one_line(tl_errmsg()));
    tl_data_close(d);
  }

  /* second run: reused, not re-tokenized */
  CHECK(tl_data_prepare(src, tok, &o, &path2, &built) == 0 && built == 0 && strcmp(path, path2) == 0);
  free(path2);

  /* a different seq len is a different cache */
  o.max_seq_len = 64;
  char *p64 = tl_data_cache_path(src, tok, &o);
  CHECK(strcmp(p64, path) != 0);
  free(p64);
  o.max_seq_len = 128;

  /* a header rewritten to another shape with its CRC fixed (T 128 -> 64, twice the
   * rows: still self-consistent) keeps the key but is not reused: rebuilt */
  {
    unsigned char h[256];
    FILE *f = fopen(path, "rb");
    CHECK(f && fread(h, 1, 256, f) == 256);
    fclose(f);
    uint64_t T2 = 64, N2 = 86;
    for (int i = 0; i < 8; i++) h[24 + i] = (unsigned char)(T2 >> (8 * i)), h[32 + i] = (unsigned char)(N2 >> (8 * i));
    uint32_t crc = tl_crc32(0, h, 252);
    for (int i = 0; i < 4; i++) h[252 + i] = (unsigned char)(crc >> (8 * i));
    patch_file(path, 0, h, 256);
    tl_dataset *d;
    CHECKF(tl_data_open(&d, path, 0) == 0, "the crafted header should be self-consistent: %s", tl_errmsg());
    CHECK(tl_data_seq_len_of(d) == 64);
    tl_data_close(d);
    CHECK(tl_data_prepare(src, tok, &o, &path2, &built) == 0 && built == 1);
    free(path2);
    CHECK(equals_golden(path, golden));
  }

  /* corrupt payload byte -> rebuilt (never used) */
  patch_file(path, 300, "\x7f\x7f", 2);
  {
    tl_dataset *d;
    CHECK(tl_data_open(&d, path, 1) == -1 && one_line(tl_errmsg()) && strstr(tl_errmsg(), "checksum"));
  }
  CHECK(tl_data_prepare(src, tok, &o, &path2, &built) == 0 && built == 1);
  free(path2);
  CHECK(equals_golden(path, golden));
  /* truncated -> rebuilt */
  CHECK(truncate(path, 1000) == 0);
  {
    tl_dataset *d;
    CHECK(tl_data_open(&d, path, 0) == -1 && one_line(tl_errmsg()) && strstr(tl_errmsg(), "truncated"));
  }
  CHECK(tl_data_prepare(src, tok, &o, &path2, &built) == 0 && built == 1);
  free(path2);
  CHECK(equals_golden(path, golden));
  /* damaged header -> rebuilt */
  patch_file(path, 33, "\x01", 1);
  {
    tl_dataset *d;
    CHECK(tl_data_open(&d, path, 0) == -1 && one_line(tl_errmsg()));
  }
  CHECK(tl_data_prepare(src, tok, &o, &path2, &built) == 0 && built == 1);
  free(path2);
  /* stale: the source changed (same path) -> rebuilt with the new content */
  {
    FILE *f = fopen(src, "ab");
    fputs("{\"text\": \"one more document\"}\n", f);
    fclose(f);
    CHECK(tl_data_prepare(src, tok, &o, &path2, &built) == 0 && built == 1 && strcmp(path, path2) == 0);
    free(path2);
    CHECK(!equals_golden(path, golden)); /* the new text changes nats_to_bpb at least */
    CHECK(tl_data_prepare(src, tok, &o, &path2, &built) == 0 && built == 0);
    free(path2);
  }
  CHECK(count_files(cdir, ".tmp.") == 0);

  /* errors while building leave nothing behind: a bad line near the end */
  {
    tl_buf b = {0};
    tl_buf_append(&b, raw, rawn);
    tl_buf_printf(&b, "{\"text\": 12}\n");
    char *bad = write_file(dir, "bad.jsonl", b.data, b.len);
    tl_buf_free(&b);
    CHECK(tl_data_prepare(bad, tok, &o, &path2, &built) == -1 && path2 == NULL);
    CHECK(one_line(tl_errmsg()) && strstr(tl_errmsg(), "bad.jsonl:11:"));
    CHECK(count_files(cdir, "bad.jsonl") == 0);
    char *empty = write_file(dir, "empty.jsonl", "", 0);
    CHECK(tl_data_prepare(empty, tok, &o, &path2, &built) == -1 && one_line(tl_errmsg()));
    CHECK(count_files(cdir, "empty.jsonl") == 0);
    tl_data_opts o2 = o;
    o2.cache_dir = NULL;
    CHECK(tl_data_prepare(src, tok, &o2, &path2, &built) == -1 && one_line(tl_errmsg()));
    o2 = o;
    o2.max_seq_len = 1;
    CHECK(tl_data_prepare(src, tok, &o2, &path2, &built) == -1 && one_line(tl_errmsg()));
    free(bad);
    free(empty);
  }

  /* pre-tokenized input: the golden file itself, through the cache */
  {
    char *pp;
    CHECKF(tl_data_prepare(golden, tok, &o, &pp, &built) == 0, "%s", tl_errmsg());
    CHECK(built == 1 && equals_golden(pp, golden));
    free(pp);
    /* without a tokenizer: vocab = max id + 1, still uint16 */
    CHECKF(tl_data_prepare(golden, NULL, &o, &pp, &built) == 0, "%s", tl_errmsg());
    CHECK(equals_golden(pp, golden));
    free(pp);
    tl_data_opts o3 = o;
    o3.max_seq_len = 256; /* T must equal max_seq_len */
    CHECK(tl_data_prepare(golden, tok, &o3, &pp, &built) == -1 && one_line(tl_errmsg()) &&
          strstr(tl_errmsg(), "input_ids"));

    /* large ids (uint32 storage), missing metadata -> NaN ratio */
    int64_t shape[2] = {3, 4};
    int64_t big[12];
    for (int i = 0; i < 12; i++) big[i] = 70000 + i * 1000;
    tl_st_writer *w = tl_st_writer_new();
    tl_st_writer_add(w, "input_ids", TL_I64, 2, shape, big);
    char *bigp = tl_path_join(dir, "big.safetensors");
    CHECK(tl_st_writer_save(w, bigp) == 0);
    tl_st_writer_free(w);
    o3.max_seq_len = 4;
    CHECKF(tl_data_prepare(bigp, NULL, &o3, &pp, &built) == 0, "%s", tl_errmsg());
    tl_dataset *d;
    CHECK(tl_data_open(&d, pp, 1) == 0);
    int64_t idx[3] = {2, 0, 1};
    int32_t got[12];
    CHECK(tl_data_gather(d, idx, 3, got) == 0);
    CHECK(got[0] == 78000 && got[4] == 70000 && got[11] == 77000 && isnan(tl_data_nats_to_bpb(d)));
    CHECK(tl_data_vocab_size(d) == 81001);
    tl_data_close(d);
    free(pp);
    /* with the GPT-2 tokenizer these ids are outside the vocabulary */
    CHECK(tl_data_prepare(bigp, tok, &o3, &pp, &built) == -1 && one_line(tl_errmsg()) && strstr(tl_errmsg(), "vocabulary"));
    /* float ids are refused */
    float fl[12] = {0};
    w = tl_st_writer_new();
    tl_st_writer_add(w, "input_ids", TL_F32, 2, shape, fl);
    char *flp = tl_path_join(dir, "float.safetensors");
    CHECK(tl_st_writer_save(w, flp) == 0);
    tl_st_writer_free(w);
    CHECK(tl_data_prepare(flp, NULL, &o3, &pp, &built) == -1 && one_line(tl_errmsg()) && strstr(tl_errmsg(), "dtype"));
    CHECK(count_files(cdir, ".tmp.") == 0 && count_files(cdir, "float") == 0);
    free(bigp);
    free(flp);
  }

  tl_tokenizer_free(tok);
  free(expect);
  free(path);
  free(src);
  free(raw);
  free(golden);
  free(cdir);
  free(dir);
  return tl_test_finish("test_data_cache");
}
