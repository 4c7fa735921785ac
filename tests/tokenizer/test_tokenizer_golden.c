/* Encodes and decodes every golden line made by Hugging Face tokenizers (the
 * fixture goldens, and the extra goldens in tests/data made by the npm package
 * of the same library) and requires identical ids and text. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tl_test.h"
#include "tlens/core.h"
#include "tlens/tokenizer.h"

static int ids_equal(const cJSON *arr, const int32_t *ids, size_t n) {
  if (!cJSON_IsArray(arr) || (size_t)cJSON_GetArraySize(arr) != n) return 0;
  size_t i = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, arr) if (!cJSON_IsNumber(e) || (int32_t)e->valuedouble != ids[i++]) return 0;
  return 1;
}

static int32_t *json_ids(const cJSON *arr, size_t *n) {
  *n = (size_t)cJSON_GetArraySize(arr);
  int32_t *v = malloc((*n + 1) * sizeof(int32_t));
  size_t i = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, arr) v[i++] = (int32_t)e->valuedouble;
  return v;
}

/* Checks every line of one golden file; returns the number of lines. From
 * threads, pass `mismatches`: lines that differ are counted there instead of
 * going through CHECK (whose counters are not thread-safe). */
static int check_golden(const tl_tokenizer *tok, const char *path, int *mismatches) {
  char *data;
  size_t len;
  if (tl_read_file(path, &data, &len)) {
    CHECKF(0, "%s", tl_errmsg());
    return 0;
  }
  int lines = 0, bad = 0;
  for (char *line = data, *next; line && *line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = 0;
    if (!*line) continue;
    cJSON *j = cJSON_Parse(line);
    const cJSON *text = cJSON_GetObjectItem(j, "text"), *ids = cJSON_GetObjectItem(j, "ids"),
                *ids_ns = cJSON_GetObjectItem(j, "ids_no_special"), *dec = cJSON_GetObjectItem(j, "decoded");
    if (!cJSON_IsString(text) || !cJSON_IsArray(ids) || !cJSON_IsArray(ids_ns)) {
      fprintf(stderr, "%s line %d: malformed\n", path, lines + 1);
      if (mismatches) *mismatches += 1;
      else CHECK(0);
      cJSON_Delete(j);
      continue;
    }
    const char *s = text->valuestring;
    int32_t *out = NULL;
    size_t n = 0;
    int ok1 = tl_tokenizer_encode(tok, s, strlen(s), 1, &out, &n) == 0 && ids_equal(ids, out, n);
    free(out);
    out = NULL;
    int ok2 = tl_tokenizer_encode(tok, s, strlen(s), 0, &out, &n) == 0 && ids_equal(ids_ns, out, n);
    free(out);
    int ok3 = 1;
    if (cJSON_IsString(dec)) {
      size_t m;
      int32_t *v = json_ids(ids_ns, &m);
      char *txt = NULL;
      ok3 = tl_tokenizer_decode(tok, v, m, &txt) == 0 && txt && strcmp(txt, dec->valuestring) == 0;
      free(txt);
      free(v);
    }
    if ((!ok1 || !ok2 || !ok3) && bad++ < 5)
      fprintf(stderr, "%s line %d (%.60s): ids %s, ids_no_special %s, decoded %s\n", path, lines + 1, s,
              ok1 ? "ok" : "DIFFER", ok2 ? "ok" : "DIFFER", ok3 ? "ok" : "DIFFER");
    if (mismatches) *mismatches += !(ok1 && ok2 && ok3);
    else CHECK(ok1 && ok2 && ok3);
    cJSON_Delete(j);
    lines++;
  }
  free(data);
  return lines;
}


/* "<ids>|<ids_no_special>|<decoded>" hashed as gen_npm_goldens.js does */
static void line_hash(const tl_tokenizer *tok, const char *text, char out[17], size_t *nns) {
  tl_buf b = {0};
  int32_t *ids = NULL, *ns = NULL;
  size_t n = 0, m = 0;
  char *dec = NULL;
  CHECK(tl_tokenizer_encode(tok, text, strlen(text), 1, &ids, &n) == 0);
  CHECK(tl_tokenizer_encode(tok, text, strlen(text), 0, &ns, &m) == 0);
  CHECK(tl_tokenizer_decode(tok, ns, m, &dec) == 0);
  for (size_t i = 0; i < n; i++) tl_buf_printf(&b, i ? ",%d" : "%d", ids[i]);
  tl_buf_append(&b, "|", 1);
  for (size_t i = 0; i < m; i++) tl_buf_printf(&b, i ? ",%d" : "%d", ns[i]);
  tl_buf_append(&b, "|", 1);
  if (dec) tl_buf_append(&b, dec, strlen(dec));
  char hex[65];
  tl_sha256_hex(b.data, b.len, hex);
  memcpy(out, hex, 16);
  out[16] = 0;
  *nns = m;
  tl_buf_free(&b);
  free(ids);
  free(ns);
  free(dec);
}

/* Checks a hashed golden file (tests/data/tokenizer_golden_*.txt) against every
 * corpus line it names; returns the number of lines checked. */
static int check_hashed(const tl_tokenizer *tok, const char *fx, const char *golden) {
  char *data;
  size_t len;
  if (tl_read_file(golden, &data, &len)) {
    CHECKF(0, "%s", tl_errmsg());
    return 0;
  }
  char *corpus_path[8] = {0};
  char **corpus_lines[8] = {0};
  char *corpus_data[8] = {0};
  int corpus_n[8] = {0};
  int lines = 0, bad = 0;
  for (char *line = data, *next; line && *line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = 0;
    int ci, li, cnt;
    char rel[256], hash[17];
    if (sscanf(line, "# corpus %d %255s", &ci, rel) == 2 && ci >= 0 && ci < 8) {
      /* "src:" paths are under the repository root, the others under the fixtures */
      const char *src = getenv("SRC");
      corpus_path[ci] = strncmp(rel, "src:", 4) == 0 ? tl_sprintf("%s/%s", src ? src : ".", rel + 4) : tl_sprintf("%s/%s", fx, rel);
      size_t clen;
      if (tl_read_file(corpus_path[ci], &corpus_data[ci], &clen)) { CHECKF(0, "%s", tl_errmsg()); continue; }
      int cap = 1024;
      corpus_lines[ci] = malloc(cap * sizeof(char *));
      for (char *l = corpus_data[ci], *nx; l; l = nx) {
        nx = strchr(l, '\n');
        if (nx) *nx++ = 0;
        if (corpus_n[ci] == cap) corpus_lines[ci] = realloc(corpus_lines[ci], (cap *= 2) * sizeof(char *));
        corpus_lines[ci][corpus_n[ci]++] = l;
      }
      continue;
    }
    if (line[0] == '#' || !line[0]) continue;
    if (sscanf(line, "%d %d %d %16s", &ci, &li, &cnt, hash) != 4 || ci < 0 || ci >= 8 || !corpus_lines[ci] ||
        li < 0 || li >= corpus_n[ci]) {
      CHECKF(0, "%s: malformed line '%s'", golden, line);
      continue;
    }
    cJSON *j = cJSON_Parse(corpus_lines[ci][li]);
    const cJSON *text = cJSON_GetObjectItem(j, "text");
    CHECK(cJSON_IsString(text));
    if (cJSON_IsString(text)) {
      char got[17];
      size_t m;
      line_hash(tok, text->valuestring, got, &m);
      int ok = strcmp(got, hash) == 0 && (int)m == cnt;
      if (!ok && bad++ < 5)
        fprintf(stderr, "%s: %s line %d: %zu ids (HF %d), hash %s (HF %s)\n", golden, corpus_path[ci], li, m, cnt, got, hash);
      CHECK(ok);
      lines++;
    }
    cJSON_Delete(j);
  }
  for (int i = 0; i < 8; i++) { free(corpus_path[i]); free(corpus_lines[i]); free(corpus_data[i]); }
  free(data);
  return lines;
}

typedef struct { const tl_tokenizer *tok; const char *path; int lines, mismatches; } job;
static void *run_job(void *p) {
  job *j = p;
  j->lines = check_golden(j->tok, j->path, &j->mismatches);
  return NULL;
}

int main(int argc, char **argv) {
  const char *fx = tl_test_fixtures();
  if (argc == 3) { /* development: check one tokenizer against one golden .jsonl */
    tl_tokenizer *tok = NULL;
    CHECKF(tl_tokenizer_load(&tok, argv[1]) == 0, "%s", tl_errmsg());
    if (tok) fprintf(stderr, "%s: %d lines\n", argv[2], check_golden(tok, argv[2], NULL));
    tl_tokenizer_free(tok);
    return tl_test_finish("test_tokenizer_golden");
  }
  const char *src = getenv("SRC");
  static const char *names[] = {"gpt2", "neox-20b", "stories260k"};
  static const char *corpora[] = {"hard_shared", "pile_text", "tinystories_valid_200"};
  int total = 0;
  for (int k = 0; k < 3; k++) {
    char *path = tl_sprintf("%s/tokenizers/%s/tokenizer.json", fx, names[k]);
    tl_tokenizer *tok = NULL;
    CHECKF(tl_tokenizer_load(&tok, path) == 0, "%s", tl_errmsg());
    free(path);
    if (!tok) continue;
    for (int c = 0; c < 3; c++) {
      char *g = tl_sprintf("%s/tokenizers/%s/golden_%s.jsonl", fx, names[k], corpora[c]);
      if (tl_file_exists(g)) {
        int n = check_golden(tok, g, NULL);
        fprintf(stderr, "%s: %d lines\n", g, n);
        total += n;
      }
      free(g);
    }
    /* extra goldens over every line of the data corpora, made by the npm package of HF tokenizers */
    if (src) {
      char *g = tl_sprintf("%s/tests/data/tokenizer_golden_%s.txt", src, names[k]);
      int n = check_hashed(tok, fx, g);
      fprintf(stderr, "%s: %d lines\n", g, n);
      CHECK(n > 4000);
      total += n;
      free(g);
    }
    /* the same goldens from two threads at once on one tokenizer */
    char *g = tl_sprintf("%s/tokenizers/%s/golden_%s.jsonl", fx, names[k], k == 2 ? "tinystories_valid_200" : "pile_text");
    job jobs[2] = {{tok, g, 0, 0}, {tok, g, 0, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, run_job, &jobs[i]);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    CHECK(jobs[0].lines > 0 && jobs[0].lines == jobs[1].lines);
    CHECK(jobs[0].mismatches == 0 && jobs[1].mismatches == 0);
    free(g);
    tl_tokenizer_free(tok);
  }
  /* a tokenizer using the added-token flags (lstrip, rstrip, single_word, normalized)
   * and a Metaspace decoder, made by gen_flags_tokenizer.py from stories260k */
  if (src) {
    char *path = tl_sprintf("%s/tests/data/tokenizer_flags/tokenizer.json", src);
    char *g = tl_sprintf("%s/tests/data/tokenizer_golden_flags.txt", src);
    tl_tokenizer *tok = NULL;
    CHECKF(tl_tokenizer_load(&tok, path) == 0, "%s", tl_errmsg());
    if (tok) {
      int n = check_hashed(tok, fx, g);
      fprintf(stderr, "%s: %d lines\n", g, n);
      CHECK(n == 600);
      total += n;
      tl_tokenizer_free(tok);
    }
    free(path);
    free(g);
  } else {
    CHECKF(0, "SRC is not set: the goldens under tests/data were not checked");
  }
  CHECK(total > 200);
  return tl_test_finish("test_tokenizer_golden");
}
