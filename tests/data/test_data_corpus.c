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

  /* bad inputs: each a one-line error naming the file and the line */
  {
    const char notjson[] = "{\"text\": \"fine\"}\n{\"text\": \"fine\"}\n{\"text\": broken}\n";
    char *p = write_file(dir, "notjson.jsonl", notjson, sizeof notjson - 1);
    expect_error(p, "text", ":3:", "JSON");
    free(p);
    const char trailing[] = "{\"text\": \"a\"} x\n";
    p = write_file(dir, "trailing.jsonl", trailing, sizeof trailing - 1);
    expect_error(p, "text", ":1:", "JSON");
    free(p);
    const char array[] = "{\"text\": \"a\"}\n[\"text\"]\n";
    p = write_file(dir, "array.jsonl", array, sizeof array - 1);
    expect_error(p, "text", ":2:", "object");
    free(p);
    const char missing[] = "{\"text\": \"a\"}\n{\"txt\": \"a\"}\n";
    p = write_file(dir, "missing.jsonl", missing, sizeof missing - 1);
    expect_error(p, "text", ":2:", "\"text\"");
    free(p);
    const char nonstr[] = "{\"text\": \"a\"}\n\n{\"text\": null}\n";
    p = write_file(dir, "nonstr.jsonl", nonstr, sizeof nonstr - 1);
    expect_error(p, "text", ":3:", "not a string");
    free(p);
    const char badutf[] = "{\"text\": \"ok\"}\n{\"text\": \"bad \xff byte\"}\n";
    p = write_file(dir, "badutf.jsonl", badutf, sizeof badutf - 1);
    expect_error(p, "text", ":2:", "UTF-8");
    free(p);
    const char overlong[] = "{\"text\": \"\xc0\xaf\"}\n";
    p = write_file(dir, "overlong.jsonl", overlong, sizeof overlong - 1);
    expect_error(p, "text", ":1:", "UTF-8");
    free(p);
    const char surrogate[] = "{\"text\": \"\xed\xa0\x80\"}\n"; /* CESU-style U+D800 */
    p = write_file(dir, "surrogate.jsonl", surrogate, sizeof surrogate - 1);
    expect_error(p, "text", ":1:", "UTF-8");
    free(p);
    const char nul[] = "{\"text\": \"a\\u0000b\"}\n";
    p = write_file(dir, "nul.jsonl", nul, sizeof nul - 1);
    expect_error(p, "text", ":1:", "U+0000");
    free(p);
    const char escaped_backslash[] = "{\"text\": \"a\\\\u0000b\"}\n"; /* a literal backslash: fine */
    p = write_file(dir, "bs.jsonl", escaped_backslash, sizeof escaped_backslash - 1);
    CHECK(read_all(p, "text", &bytes, &h1) == 1 && bytes == 8);
    free(p);
    p = write_file(dir, "empty.jsonl", "", 0);
    expect_error(p, "text", "empty corpus", NULL);
    free(p);
    p = write_file(dir, "blank.jsonl", "\n \n", 3);
    expect_error(p, "text", "empty corpus", NULL);
    free(p);
    p = write_file(dir, "corpus.txt", "x", 1);
    expect_error(p, "text", ".jsonl", NULL);
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
    char *p = write_file(dir, "corrupt.jsonl.zst", bad, zn);
    expect_error(p, "text", "corrupt zstd", "line");
    free(p);
    p = write_file(dir, "trunc.jsonl.zst", z, zn * 2 / 3);
    expect_error(p, "text", "truncated", "line");
    free(p);
    p = write_file(dir, "trunc_tail.jsonl.zst", z, zn - 3); /* only the checksum cut */
    expect_error(p, "text", "truncated", NULL);
    free(p);
    p = write_file(dir, "empty.jsonl.zst", "", 0);
    expect_error(p, "text", "empty corpus", NULL);
    free(p);
    p = write_file(dir, "plain.jsonl.zst", raw, 4096); /* not zstd */
    expect_error(p, "text", "zstd", NULL);
    free(p);
    /* a valid zst whose content has a bad line: line numbers count decompressed lines */
    const char two[] = "{\"text\": \"a\"}\n{\"text\": 3}\n";
    p = write_zst(dir, "badline.jsonl.zst", two, sizeof two - 1, &zn, NULL);
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

  /* the UTF-8 validator on hand-made cases */
  CHECK(tl_utf8_invalid_at("abc", 3) == -1);
  CHECK(tl_utf8_invalid_at("\xf4\x8f\xbf\xbf", 4) == -1);  /* U+10FFFF */
  CHECK(tl_utf8_invalid_at("\xf4\x90\x80\x80", 4) == 0);   /* above U+10FFFF */
  CHECK(tl_utf8_invalid_at("ab\xe2\x82", 4) == 2);         /* truncated sequence */
  CHECK(tl_utf8_invalid_at("\xe0\x80\xaf", 3) == 0);       /* overlong */
  CHECK(tl_utf8_invalid_at("a\x80", 2) == 1);              /* stray continuation */

  free(pile);
  free(ts);
  free(tsz);
  free(dir);
  return tl_test_finish("test_data_corpus");
}
