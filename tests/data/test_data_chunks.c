/* Chunking against the reference: token ids and nats_to_bpb equal the goldens made by
 * tuned-lens `chunk_and_tokenize` (GPT-2, Pile T=128 and TinyStories T=256); .zst gives
 * the same chunks; the BOS rule for a Llama tokenizer (stories260k) re-derived from
 * encode() of the joined text. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "data/data_internal.h"
#include "tl_test.h"
#include "tlens/core.h"
#include "tlens/data.h"
#include "tlens/safetensors.h"

/* Compares chunks with the golden input_ids and nats_to_bpb of a fixture file. */
static void check_golden(const tl_chunks *c, const char *golden) {
  tl_safetensors st;
  if (tl_st_open(&st, golden) != 0) {
    CHECKF(0, "%s", tl_errmsg());
    return;
  }
  const tl_st_tensor *t = tl_st_find(&st, "input_ids");
  CHECK(t && t->ndim == 2);
  if (!t || t->ndim != 2) return;
  CHECKF(c->n_chunks == t->shape[0] && c->seq_len == t->shape[1], "shape [%lld,%lld] vs golden [%lld,%lld]",
         (long long)c->n_chunks, (long long)c->seq_len, (long long)t->shape[0], (long long)t->shape[1]);
  int64_t *ref;
  CHECK(tl_st_get_i64(&st, "input_ids", 2, t->shape, &ref) == 0);
  int64_t n = t->shape[0] * t->shape[1], bad = 0, first = -1;
  if (c->n_chunks == t->shape[0] && c->seq_len == t->shape[1])
    for (int64_t i = 0; i < n; i++)
      if (c->ids[i] != ref[i]) {
        if (first < 0) first = i;
        bad++;
      }
  CHECKF(bad == 0, "%s: %lld ids differ, first at [%lld, %lld]", golden, (long long)bad,
         (long long)(first / t->shape[1]), (long long)(first % t->shape[1]));
  double want;
  const char *m = tl_st_meta(&st, "nats_to_bpb");
  CHECK(m && tl_parse_double(m, &want) == 0);
  /* same integer counts and the same two double operations as the reference: exact */
  CHECKF(c->nats_to_bpb == want, "nats_to_bpb %.17g vs golden %.17g", c->nats_to_bpb, want);
  free(ref);
  tl_st_close(&st);
}

int main(void) {
  const char *fx = tl_test_fixtures();
  char *p;

  /* ---- GPT-2: golden chunks ---- */
  tl_tokenizer *gpt2;
  p = tl_sprintf("%s/tokenizers/gpt2/tokenizer.json", fx);
  CHECKF(tl_tokenizer_load(&gpt2, p) == 0, "%s", tl_errmsg());
  free(p);
  CHECK(tl_tokenizer_adds_bos(gpt2) == 0);
  {
    tl_chunks c;
    p = tl_sprintf("%s/data/pile_text.jsonl", fx);
    CHECKF(tl_chunk_corpus(p, "text", gpt2, 128, &c) == 0, "%s", tl_errmsg());
    free(p);
    CHECK(c.total_bytes == 22473 + 10 * strlen("<|endoftext|>")); /* text + one EOS string per doc */
    p = tl_sprintf("%s/data/chunks_gpt2_pile_128.safetensors", fx);
    check_golden(&c, p);
    free(p);
    tl_chunks_free(&c);
  }
  {
    tl_chunks c, z;
    p = tl_sprintf("%s/data/tinystories_train_head.jsonl", fx);
    CHECKF(tl_chunk_corpus(p, "text", gpt2, 256, &c) == 0, "%s", tl_errmsg());
    free(p);
    p = tl_sprintf("%s/data/chunks_gpt2_tinystories_train_256.safetensors", fx);
    check_golden(&c, p); /* 2316 stories: two batches (2048 + 268), each drops its last chunk */
    free(p);
    p = tl_sprintf("%s/data/tinystories_train_head.jsonl.zst", fx);
    CHECKF(tl_chunk_corpus(p, "text", gpt2, 256, &z) == 0, "%s", tl_errmsg());
    free(p);
    CHECK(z.n_chunks == c.n_chunks && z.seq_len == c.seq_len && z.nats_to_bpb == c.nats_to_bpb);
    CHECK(z.n_chunks == c.n_chunks && memcmp(z.ids, c.ids, (size_t)(c.n_chunks * c.seq_len) * 4) == 0);
    tl_chunks_free(&z);
    /* one thread gives the same result as several (batches are encoded in parallel) */
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    p = tl_sprintf("%s/data/tinystories_train_head.jsonl", fx);
    CHECK(tl_chunk_corpus(p, "text", gpt2, 256, &z) == 0);
    free(p);
    omp_set_num_threads(threads);
    CHECK(z.n_chunks == c.n_chunks && z.nats_to_bpb == c.nats_to_bpb);
    CHECK(z.n_chunks == c.n_chunks && memcmp(z.ids, c.ids, (size_t)(c.n_chunks * c.seq_len) * 4) == 0);
    tl_chunks_free(&c);
    tl_chunks_free(&z);
  }
  /* too little text for one kept chunk: one line naming the file */
  {
    tl_chunks c;
    p = tl_sprintf("%s/data/pile_text.jsonl", fx);
    CHECK(tl_chunk_corpus(p, "text", gpt2, 1 << 20, &c) == -1);
    CHECK(strstr(tl_errmsg(), "pile_text.jsonl") && !strchr(tl_errmsg(), '\n'));
    free(p);
  }

  /* ---- stories260k (Llama: the post-processor adds BOS) ---- */
  tl_tokenizer *ll;
  p = tl_sprintf("%s/models/stories260k/tokenizer.json", fx);
  CHECKF(tl_tokenizer_load(&ll, p) == 0, "%s", tl_errmsg());
  free(p);
  CHECK(tl_tokenizer_adds_bos(ll) == 1 && tl_tokenizer_bos_id(ll) == 1 && tl_tokenizer_eos_id(ll) == 2);
  CHECK(tl_data_seq_len(ll, 2048) == 512); /* model_max_length from tokenizer_config.json */
  {
    const int64_t T = 64;
    tl_chunks c;
    p = tl_sprintf("%s/data/tinystories_valid_head.jsonl", fx);
    CHECKF(tl_chunk_corpus(p, "text", ll, T, &c) == 0, "%s", tl_errmsg());
    CHECK(c.seq_len == T && c.n_chunks > 100);
    int64_t nobos = 0;
    for (int64_t i = 0; i < c.n_chunks; i++) nobos += c.ids[i * T] != 1;
    CHECK(nobos == 0);
    CHECK(c.ids[0] == 1 && c.ids[1] == 2); /* BOS, EOS, doc 1 ... */

    /* Re-derivation: the 784 stories form one batch; joined = "</s>" + s1 + "</s>" + s2 ...
     * encode(joined, add_special) is BOS + ids; chunk k = BOS + ids[k*(T-1) : (k+1)*(T-1)]. */
    tl_corpus *cor;
    CHECK(tl_corpus_open(&cor, p, "text") == 0);
    tl_buf joined = {0};
    const char *t;
    size_t n;
    int64_t line, ndocs = 0;
    while (tl_corpus_next(cor, &t, &n, &line) == 1) {
      tl_buf_append(&joined, "</s>", 4);
      tl_buf_append(&joined, t, n);
      ndocs++;
    }
    tl_corpus_close(cor);
    CHECK(ndocs == 784 && ndocs < TL_DATA_BATCH_DOCS);
    int32_t *ids, *ids_sp;
    size_t nid, nsp;
    CHECK(tl_tokenizer_encode(ll, (const char *)joined.data, joined.len, 0, &ids, &nid) == 0);
    CHECK(tl_tokenizer_encode(ll, (const char *)joined.data, joined.len, 1, &ids_sp, &nsp) == 0);
    CHECK(nsp == nid + 1 && ids_sp[0] == 1 && memcmp(ids_sp + 1, ids, nid * 4) == 0);
    int64_t total = (int64_t)((nid + T - 2) / (T - 1));
    CHECK(c.n_chunks == total - 1);
    int64_t bad = 0;
    for (int64_t k = 0; k < c.n_chunks && c.n_chunks == total - 1; k++)
      bad += c.ids[k * T] != 1 || memcmp(c.ids + k * T + 1, ids + k * (T - 1), (size_t)(T - 1) * 4) != 0;
    CHECK(bad == 0);
    /* reference token count: every chunk (the dropped one too) carries its BOS */
    CHECK(c.total_tokens == nid + (uint64_t)total && c.total_bytes == joined.len);
    CHECK(c.nats_to_bpb == ((double)(nid + total) / (double)joined.len) / log(2.0));
    free(ids);
    free(ids_sp);
    tl_buf_free(&joined);
    tl_chunks_free(&c);
    free(p);
  }
  tl_tokenizer_free(ll);
  tl_tokenizer_free(gpt2);
  return tl_test_finish("test_data_chunks");
}
