/* Encode throughput (MB of UTF-8 text per second) of the GPT-2 and NeoX
 * tokenizers on the fixture corpora, on one core and with two threads; and,
 * when node and the npm package of Hugging Face tokenizers are available
 * (TOKENIZERS_NODE_DIR, else /tmp/tok, holding node_modules/tokenizers), the
 * same measurement of that library in the same run on the same text. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tl_test.h"
#include "tlens/core.h"
#include "tlens/tokenizer.h"

typedef struct { char **text; size_t *len; size_t n, bytes; } corpus;

static int load_corpus(const char *path, corpus *c) {
  char *data;
  size_t len;
  if (tl_read_file(path, &data, &len)) return -1;
  memset(c, 0, sizeof *c);
  size_t cap = 0;
  for (char *l = data, *nx; l && *l; l = nx) {
    nx = strchr(l, '\n');
    if (nx) *nx++ = 0;
    cJSON *j = cJSON_Parse(l);
    const cJSON *t = cJSON_GetObjectItem(j, "text");
    if (cJSON_IsString(t)) {
      if (c->n == cap) {
        cap = cap ? cap * 2 : 256;
        c->text = tl_realloc(c->text, cap * sizeof(char *));
        c->len = tl_realloc(c->len, cap * sizeof(size_t));
      }
      c->text[c->n] = tl_strdup(t->valuestring);
      c->len[c->n] = strlen(t->valuestring);
      c->bytes += c->len[c->n++];
    }
    cJSON_Delete(j);
  }
  free(data);
  return 0;
}

typedef struct { const tl_tokenizer *tok; const corpus *c; size_t lo, hi; size_t ntok; int loops; } work;

static void *encode_range(void *p) {
  work *w = p;
  for (int l = 0; l < w->loops; l++) {
    for (size_t i = w->lo; i < w->hi; i++) {
      int32_t *ids;
      size_t n;
      if (tl_tokenizer_encode(w->tok, w->c->text[i], w->c->len[i], 0, &ids, &n) == 0) { w->ntok += n; free(ids); }
    }
  }
  return NULL;
}

/* Best MB/s over `reps` passes with `threads` threads splitting the documents;
 * each pass encodes the corpus `loops` times (small corpora are repeated so a
 * pass takes a measurable time). */
static double run(const tl_tokenizer *tok, const corpus *c, int threads, int reps, int loops, size_t *ntok) {
  double best = 0;
  for (int r = 0; r < reps; r++) {
    work w[2];
    pthread_t th[2];
    /* split by bytes so both threads get about the same amount of text */
    size_t half = 0, acc = 0;
    while (half < c->n && acc < c->bytes / 2) acc += c->len[half++];
    double t0 = tl_now();
    for (int k = 0; k < threads; k++) {
      w[k] = (work){tok, c, threads == 1 ? 0 : k == 0 ? 0 : half, threads == 1 ? c->n : k == 0 ? half : c->n, 0, loops};
      pthread_create(&th[k], NULL, encode_range, &w[k]);
    }
    for (int k = 0; k < threads; k++) pthread_join(th[k], NULL);
    double s = tl_now() - t0, mbs = (double)loops * c->bytes / 1e6 / s;
    if (mbs > best) best = mbs;
    *ntok = 0;
    for (int k = 0; k < threads; k++) *ntok += w[k].ntok / (size_t)loops;
  }
  return best;
}

int main(void) {
  const char *fx = tl_test_fixtures();
  static const char *names[] = {"gpt2", "neox-20b"};
  static const char *corpora[] = {"pile_text.jsonl", "tinystories_train_head.jsonl"};
  corpus cs[2];
  for (int i = 0; i < 2; i++) {
    char *p = tl_sprintf("%s/data/%s", fx, corpora[i]);
    if (load_corpus(p, &cs[i])) { fprintf(stderr, "bench_tokenizer: %s\n", tl_errmsg()); return 1; }
    free(p);
  }
  printf("tokenizer encode throughput (MB/s of UTF-8 text; best of 3 passes over >= 4 MB, cold = first pass of a fresh tokenizer)\n");
  printf("%-10s %-30s %8s %8s %10s %10s\n", "tokenizer", "corpus", "MB", "tokens", "1 thread", "2 threads");
  for (int k = 0; k < 2; k++) {
    char *path = tl_sprintf("%s/tokenizers/%s/tokenizer.json", fx, names[k]);
    for (int i = 0; i < 2; i++) {
      tl_tokenizer *tok;
      if (tl_tokenizer_load(&tok, path)) { fprintf(stderr, "bench_tokenizer: %s\n", tl_errmsg()); return 1; }
      size_t ntok;
      int loops = cs[i].bytes < 4000000 ? (int)(4000000 / cs[i].bytes) + 1 : 1;
      double cold = run(tok, &cs[i], 1, 1, 1, &ntok);
      double one = run(tok, &cs[i], 1, 3, loops, &ntok);
      double two = run(tok, &cs[i], 2, 3, loops, &ntok);
      printf("%-10s %-30s %8.2f %8zu %10.2f %10.2f   (cold 1 thread %.2f)\n", names[k], corpora[i], cs[i].bytes / 1e6,
             ntok, one, two, cold);
      fflush(stdout);
      tl_tokenizer_free(tok);
    }
    free(path);
  }
  /* the reference library on the same text, one core */
  const char *node_dir = getenv("TOKENIZERS_NODE_DIR");
  if (!node_dir) node_dir = "/tmp/tok";
  char *mod = tl_sprintf("%s/node_modules/tokenizers/package.json", node_dir);
  char *script = tl_strdup(__FILE__);
  *strrchr(script, '/') = 0;
  if (tl_file_exists(mod) && system("node --version > /dev/null 2>&1") == 0) {
    printf("HF tokenizers (npm) on one core (RAYON_NUM_THREADS=1): MB/s, seq = encode() per document, batch = encodeBatch\n");
    fflush(stdout);
    for (int k = 0; k < 2; k++) {
      char *cmd = tl_sprintf("RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false NODE_PATH='%s/node_modules' "
                             "taskset -c 0 node '%s/bench_tokenizers_npm.js' %s '%s/tokenizers/%s/tokenizer.json' "
                             "'%s/data/%s' '%s/data/%s'",
                             node_dir, script, names[k], fx, names[k], fx, corpora[0], fx, corpora[1]);
      if (system(cmd) != 0) fprintf(stderr, "bench_tokenizer: the npm comparison failed\n");
      free(cmd);
    }
  } else {
    printf("HF tokenizers (npm) not found at %s (set TOKENIZERS_NODE_DIR): no comparison\n", node_dir);
  }
  free(mod);
  free(script);
  return 0;
}
