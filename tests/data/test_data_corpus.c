/* Corpus reader: real corpora (counts and byte totals from Python's json module),
 * .jsonl vs .jsonl.zst identical, and one-line errors naming file and line for every
 * kind of bad input (files made in a scratch directory). */
#include <zstd.h>

#include "data_work.h"
#include "data/data_internal.h"
#include "tl_test.h"
#include "tlens/data.h"

/* Reads a whole corpus; returns the document count (-1 on error), total text bytes. */
static int64_t read_all(const char *path, const char *col, uint64_t *bytes, uint64_t *hash) {
  tl_corpus *c;
  if (tl_corpus_open(&c, path, col) != 0) return -1;
  int64_t n = 0;
  *bytes = 0;
  *hash = 1469598103934665603ull; /* FNV-1a over all texts, with separators */
  const char *t;
  size_t len;
  int64_t line;
  int r;
  while ((r = tl_corpus_next(c, &t, &len, &line)) == 1) {
    n++;
    *bytes += len;
    for (size_t i = 0; i < len; i++) *hash = (*hash ^ (unsigned char)t[i]) * 1099511628211ull;
    *hash = (*hash ^ 0xFF) * 1099511628211ull;
  }
  tl_corpus_close(c);
  return r < 0 ? -1 : n;
}

/* Expects reading `path` to fail with one line containing every needle. */
static void expect_error(const char *path, const char *col, const char *needle1, const char *needle2) {
  uint64_t b, h;
  tl_clear_error();
  int64_t n = read_all(path, col, &b, &h);
  const char *m = tl_errmsg();
  CHECKF(n == -1, "%s: expected an error", path);
  CHECKF(one_line(m), "%s: message not one line: '%s'", path, m);
  CHECKF(strstr(m, path) != NULL, "message does not name the file: %s", m);
  if (needle1) CHECKF(strstr(m, needle1) != NULL, "message lacks '%s': %s", needle1, m);
  if (needle2) CHECKF(strstr(m, needle2) != NULL, "message lacks '%s': %s", needle2, m);
}

static char *write_zst(const char *dir, const char *name, const char *data, size_t n, size_t *zn, char **zdata) {
  size_t cap = ZSTD_compressBound(n);
  char *z = malloc(cap);
  ZSTD_CCtx *cc = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
  size_t r = ZSTD_compress2(cc, z, cap, data, n);
  ZSTD_freeCCtx(cc);
  CHECK(!ZSTD_isError(r));
  *zn = r;
  char *p = write_file(dir, name, z, r);
  if (zdata) *zdata = z;
  else free(z);
  return p;
}

/* A file that must fail to read: its name in the scratch directory, its bytes,
 * and what the one-line message must contain besides the file name. */
typedef struct {
  const char *name;
  const char *data;
  size_t len;
  const char *needle1, *needle2;
} bad_file;

#define BYTES(lit) lit, sizeof lit - 1 /* a string literal's bytes without the NUL */

static void expect_file_errors(const char *dir, const bad_file *cases, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char *p = write_file(dir, cases[i].name, cases[i].data, cases[i].len);
    expect_error(p, "text", cases[i].needle1, cases[i].needle2);
    free(p);
  }
}

/* Bad inputs, each a one-line error naming the file and (where it has one) the line. */
static const bad_file bad_jsonl[] = {
    {"notjson.jsonl", BYTES("{\"text\": \"fine\"}\n{\"text\": \"fine\"}\n{\"text\": broken}\n"), ":3:", "JSON"},
    {"trailing.jsonl", BYTES("{\"text\": \"a\"} x\n"), ":1:", "JSON"},
    {"array.jsonl", BYTES("{\"text\": \"a\"}\n[\"text\"]\n"), ":2:", "object"},
    {"missing.jsonl", BYTES("{\"text\": \"a\"}\n{\"txt\": \"a\"}\n"), ":2:", "\"text\""},
    {"nonstr.jsonl", BYTES("{\"text\": \"a\"}\n\n{\"text\": null}\n"), ":3:", "not a string"},
    {"badutf.jsonl", BYTES("{\"text\": \"ok\"}\n{\"text\": \"bad \xff byte\"}\n"), ":2:", "UTF-8"},
    {"overlong.jsonl", BYTES("{\"text\": \"\xc0\xaf\"}\n"), ":1:", "UTF-8"},
    {"surrogate.jsonl", BYTES("{\"text\": \"\xed\xa0\x80\"}\n"), ":1:", "UTF-8"}, /* CESU-style U+D800 */
    {"nul.jsonl", BYTES("{\"text\": \"a\\u0000b\"}\n"), ":1:", "U+0000"},
    {"empty.jsonl", BYTES(""), "empty corpus", NULL},
    {"blank.jsonl", BYTES("\n \n"), "empty corpus", NULL},
    {"corpus.txt", BYTES("x"), ".jsonl", NULL},
};

/* The UTF-8 validator on hand-made cases: the offset of the first bad byte, or -1. */
static const struct {
  const char *s;
  size_t n;
  int64_t bad_at;
} utf8_cases[] = {
    {BYTES("abc"), -1},
    {BYTES("\xf4\x8f\xbf\xbf"), -1}, /* U+10FFFF */
    {BYTES("\xf4\x90\x80\x80"), 0},  /* above U+10FFFF */
    {BYTES("ab\xe2\x82"), 2},          /* truncated sequence */
    {BYTES("\xe0\x80\xaf"), 0},       /* overlong */
    {BYTES("a\x80"), 1},                /* stray continuation */
};

int main(void) {
  const char *fx = tl_test_fixtures();
  char *dir = work_dir("test_data_corpus");
  uint64_t bytes, h1, h2;

  /* Pile sample: 10 documents, 22473 UTF-8 bytes of text (Python json.loads) */
  char *pile = tl_sprintf("%s/data/pile_text.jsonl", fx);
  CHECK(read_all(pile, "text", &bytes, &h1) == 10);
  CHECK(bytes == 22473);

  /* TinyStories head: 2316 stories, 2059865 bytes; the .zst copy streams identically */
  char *ts = tl_sprintf("%s/data/tinystories_train_head.jsonl", fx);
  char *tsz = tl_sprintf("%s/data/tinystories_train_head.jsonl.zst", fx);
  CHECK(read_all(ts, "text", &bytes, &h1) == 2316);
  CHECK(bytes == 2059865);
  CHECK(read_all(tsz, "text", &bytes, &h2) == 2316);
  CHECK(bytes == 2059865 && h1 == h2);

  /* blank lines are skipped, CRLF endings and a missing final newline are fine,
   * other columns are ignored, a custom column is read */
  {
    const char ok[] = "{\"text\": \"a\", \"x\": 1}\r\n\n  \n{\"body\": 5, \"text\": \"\\u00e9\\ud83d\\ude00\"}";
    char *p = write_file(dir, "ok.jsonl", ok, sizeof ok - 1);
    tl_corpus *c;
    CHECK(tl_corpus_open(&c, p, "text") == 0);
    const char *t;
    size_t n;
    int64_t line;
    CHECK(tl_corpus_next(c, &t, &n, &line) == 1 && n == 1 && t[0] == 'a' && line == 1);
    CHECK(tl_corpus_next(c, &t, &n, &line) == 1 && line == 4);
    CHECK(n == 6 && memcmp(t, "\xc3\xa9\xf0\x9f\x98\x80", 6) == 0); /* é + U+1F600 from escapes */
    CHECK(tl_corpus_next(c, &t, &n, &line) == 0);
    tl_corpus_close(c);
    const char col[] = "{\"story\": \"once\"}\n";
    char *p2 = write_file(dir, "col.jsonl", col, sizeof col - 1);
    CHECK(read_all(p2, "story", &bytes, &h1) == 1 && bytes == 4);
    expect_error(p2, "text", ":1:", "\"text\"");
    free(p);
    free(p2);
  }

  /* bad inputs; a literal backslash before u0000 is fine; a missing file */
  expect_file_errors(dir, bad_jsonl, sizeof bad_jsonl / sizeof bad_jsonl[0]);
  {
    const char escaped_backslash[] = "{\"text\": \"a\\\\u0000b\"}\n";
    char *p = write_file(dir, "bs.jsonl", escaped_backslash, sizeof escaped_backslash - 1);
    CHECK(read_all(p, "text", &bytes, &h1) == 1 && bytes == 8);
    free(p);
    char *nofile = tl_path_join(dir, "absent.jsonl");
    expect_error(nofile, "text", "cannot open", NULL);
    free(nofile);
  }

  /* zstd: corrupt, truncated, empty, not zstd at all */
  {
    char *raw;
    size_t rawn;
    CHECK(tl_read_file(ts, &raw, &rawn) == 0);
    size_t zn;
    char *z;
    char *good = write_zst(dir, "good.jsonl.zst", raw, rawn, &zn, &z);
    CHECK(read_all(good, "text", &bytes, &h2) == 2316 && h1 != h2); /* h1 was reset above */
    uint64_t hraw;
    CHECK(read_all(ts, "text", &bytes, &hraw) == 2316 && hraw == h2);

    char *bad = malloc(zn);
    memcpy(bad, z, zn);
    for (size_t i = zn / 2; i < zn / 2 + 64; i++) bad[i] ^= 0x5A;
    const bad_file bad_zst[] = {
        {"corrupt.jsonl.zst", bad, zn, "corrupt zstd", "line"},
        {"trunc.jsonl.zst", z, zn * 2 / 3, "truncated", "line"},
        {"trunc_tail.jsonl.zst", z, zn - 3, "truncated", NULL}, /* only the checksum cut */
        {"empty.jsonl.zst", BYTES(""), "empty corpus", NULL},
        {"plain.jsonl.zst", raw, 4096, "zstd", NULL}, /* not zstd */
    };
    expect_file_errors(dir, bad_zst, sizeof bad_zst / sizeof bad_zst[0]);
    /* a valid zst whose content has a bad line: line numbers count decompressed lines */
    const char two[] = "{\"text\": \"a\"}\n{\"text\": 3}\n";
    char *p = write_zst(dir, "badline.jsonl.zst", two, sizeof two - 1, &zn, NULL);
    expect_error(p, "text", ":2:", "not a string");
    free(p);
    free(bad);
    free(z);
    free(raw);
    free(good);
  }

  /* a document longer than the read block (3 MiB on one line), plain and zstd */
  {
    size_t big = 3u << 20;
    tl_buf b = {0};
    tl_buf_printf(&b, "{\"text\": \"");
    for (size_t i = 0; i < big; i++) tl_buf_append(&b, i % 61 == 60 ? " " : "a", 1);
    tl_buf_printf(&b, "\"}\n{\"text\": \"end\"}\n");
    char *p = write_file(dir, "long.jsonl", b.data, b.len);
    CHECK(read_all(p, "text", &bytes, &h1) == 2 && bytes == big + 3);
    size_t zn;
    char *pz = write_zst(dir, "long.jsonl.zst", (const char *)b.data, b.len, &zn, NULL);
    CHECK(read_all(pz, "text", &bytes, &h2) == 2 && bytes == big + 3 && h1 == h2);
    free(p);
    free(pz);
    tl_buf_free(&b);
  }

  for (size_t i = 0; i < sizeof utf8_cases / sizeof utf8_cases[0]; i++)
    CHECKF(tl_utf8_invalid_at(utf8_cases[i].s, utf8_cases[i].n) == utf8_cases[i].bad_at, "utf8 case %zu", i);

  free(pile);
  free(ts);
  free(tsz);
  free(dir);
  return tl_test_finish("test_data_corpus");
}
