/* Invalid tokenizer.json files are one-line errors naming the file and the field;
 * a tiny hand-made BPE checks merge order against hand-worked results; the
 * fixture tokenizers report the ids, lengths and flags their JSON defines. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tl_test.h"
#include "tlens/core.h"
#include "tlens/tokenizer.h"

static char dir[256];

static char *write_json(const char *name, const char *json) {
  char *path = tl_sprintf("%s/%s", dir, name);
  char *d = tl_sprintf("%s", path);
  *strrchr(d, '/') = 0;
  tl_mkdirs(d);
  free(d);
  FILE *f = fopen(path, "wb");
  fputs(json, f);
  fclose(f);
  return path;
}

/* Loading must fail with one line that names the file and contains `field`. */
static void expect_error(const char *name, const char *json, const char *field) {
  char *path = write_json(name, json);
  tl_tokenizer *t = (tl_tokenizer *)1;
  tl_clear_error();
  int rc = tl_tokenizer_load(&t, path);
  const char *msg = tl_errmsg();
  CHECKF(rc == -1 && t == NULL, "%s loaded", name);
  CHECKF(strstr(msg, path) != NULL, "%s: message does not name the file: %s", name, msg);
  CHECKF(strstr(msg, field) != NULL, "%s: message does not name '%s': %s", name, field, msg);
  CHECKF(strchr(msg, '\n') == NULL, "%s: message is not one line: %s", name, msg);
  free(path);
}

#define TINY_MODEL(merges) \
  "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"c\": 2, \"ab\": 3, \"bc\": 4, \"abc\": 5}, " \
  "\"merges\": " merges "}}"

static void encode_check(const tl_tokenizer *t, const char *text, const int32_t *want, size_t nwant) {
  int32_t *ids = NULL;
  size_t n = 0;
  CHECK(tl_tokenizer_encode(t, text, strlen(text), 1, &ids, &n) == 0);
  int same = n == nwant && (n == 0 || memcmp(ids, want, n * sizeof(int32_t)) == 0);
  CHECKF(same, "encode('%s'): got %zu ids", text, n);
  free(ids);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/tlens_tok_test_XXXXXX");
  CHECK(mkdtemp(dir) != NULL);

  expect_error("notjson/tokenizer.json", "{\"model\": {", "not valid JSON");
  expect_error("nomodel/tokenizer.json", "{\"version\": \"1.0\", \"added_tokens\": []}", "'model'");
  expect_error("wordpiece/tokenizer.json", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", "model.type");
  expect_error("novocab/tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"merges\": []}}", "model.vocab");
  expect_error("badvocab/tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"x\"}, \"merges\": []}}",
               "model.vocab");
  expect_error("mergeoov/tokenizer.json", TINY_MODEL("[\"a b\", \"x y\"]"), "model.merges[1]");
  expect_error("mergeform/tokenizer.json", TINY_MODEL("[\"ab\"]"), "model.merges[0]");
  expect_error("mergetype/tokenizer.json", TINY_MODEL("[[\"a\"]]"), "model.merges[0]");
  expect_error("mergesnot/tokenizer.json", TINY_MODEL("{}"), "model.merges");
  expect_error("badnorm/tokenizer.json",
               "{\"normalizer\": {\"type\": \"Lowercase2\"}, \"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}",
               "normalizer.type");
  expect_error("badpre/tokenizer.json",
               "{\"pre_tokenizer\": {\"type\": \"Whitespace9\"}, \"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}",
               "pre_tokenizer.type");
  expect_error("baddec/tokenizer.json",
               "{\"decoder\": {\"type\": \"Nope\"}, \"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}", "decoder.type");
  expect_error("badpost/tokenizer.json",
               "{\"post_processor\": {\"type\": \"Nope\"}, \"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}",
               "post_processor.type");
  expect_error("badadded/tokenizer.json",
               "{\"added_tokens\": [{\"id\": -3, \"content\": \"x\"}], \"model\": {\"vocab\": {\"a\": 0}, \"merges\": []}}",
               "added_tokens[0].id");
  expect_error("badunk/tokenizer.json",
               "{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": [], \"unk_token\": \"<unk>\"}}", "model.unk_token");
  expect_error("toplist/tokenizer.json", "[1, 2]", "top level");

  /* tokenizer_config.json beside it: a bad model_max_length names that file */
  {
    char *p = write_json("badcfg/tokenizer.json", TINY_MODEL("[\"a b\"]"));
    char *c = write_json("badcfg/tokenizer_config.json", "{\"model_max_length\": \"long\"}");
    tl_tokenizer *t = NULL;
    CHECK(tl_tokenizer_load(&t, p) == -1);
    CHECKF(strstr(tl_errmsg(), c) && strstr(tl_errmsg(), "model_max_length"), "%s", tl_errmsg());
    free(p);
    free(c);
  }
  {
    tl_tokenizer *t = (tl_tokenizer *)1;
    CHECK(tl_tokenizer_load(&t, "/nonexistent/tokenizer.json") == -1 && t == NULL);
    CHECK(strstr(tl_errmsg(), "/nonexistent/tokenizer.json") != NULL);
  }

  /* a word of only unknown characters encodes to no ids, first into a fresh word
   * cache (which then holds no ids at all), then again from that cache */
  {
    char *p = write_json("dropped/tokenizer.json", TINY_MODEL("[\"a b\"]"));
    tl_tokenizer *t = NULL;
    CHECKF(tl_tokenizer_load(&t, p) == 0, "%s", tl_errmsg());
    if (t) {
      encode_check(t, "xyz", NULL, 0);
      encode_check(t, "xyz", NULL, 0);
      encode_check(t, "ab", (int32_t[]){3}, 1);
      tl_tokenizer_free(t);
    }
    free(p);
  }

  /* hand-worked BPE: merges by rank, leftmost first on ties */
  {
    char *p = write_json("tiny/tokenizer.json", TINY_MODEL("[\"b c\", \"a b\", \"a bc\"]"));
    char *c = write_json("tiny/tokenizer_config.json", "{\"model_max_length\": 1000000000000000019884624838656}");
    tl_tokenizer *t = NULL;
    CHECKF(tl_tokenizer_load(&t, p) == 0, "%s", tl_errmsg());
    if (t) {
      encode_check(t, "abc", (int32_t[]){5}, 1);        /* b+c (rank 0), then a+bc (rank 2) */
      encode_check(t, "abab", (int32_t[]){3, 3}, 2);    /* a+b twice */
      encode_check(t, "cab", (int32_t[]){2, 3}, 2);
      encode_check(t, "bcbc", (int32_t[]){4, 4}, 2);
      encode_check(t, "abx", (int32_t[]){3}, 1);        /* no unk token: unknown characters are dropped */
      encode_check(t, "", NULL, 0);
      CHECK(tl_tokenizer_model_max_length(t) == INT64_MAX); /* HF's 1e30 means no limit */
      CHECK(tl_tokenizer_vocab_size(t) == 6);
      CHECK(tl_tokenizer_eos_id(t) == -1 && tl_tokenizer_eos_text(t) == NULL && !tl_tokenizer_adds_bos(t));
      char *txt = NULL;
      CHECK(tl_tokenizer_decode(t, (int32_t[]){5, 3}, 2, &txt) == 0 && txt && !strcmp(txt, "abc ab")); /* no decoder: joined by spaces */
      free(txt);
      txt = (char *)1;
      CHECK(tl_tokenizer_decode(t, (int32_t[]){6}, 1, &txt) == -1 && txt == NULL);
      CHECK(strstr(tl_errmsg(), "id 6") != NULL);
      int32_t *ids = NULL;
      size_t n = 0;
      CHECK(tl_tokenizer_encode(t, "a\xff", 2, 0, &ids, &n) == -1 && ids == NULL); /* not UTF-8 */
      tl_tokenizer_free(t);
    }
    free(p);
    free(c);
  }

  /* the fixture tokenizers: values read off their JSON and tokenizer_config.json */
  const char *fx = tl_test_fixtures();
  /* GPT-2's " the" is "\u0120the", id 262 (tokenizer.json) */
  {
    char *p = tl_sprintf("%s/tokenizers/gpt2/tokenizer.json", fx);
    tl_tokenizer *t = NULL;
    CHECKF(tl_tokenizer_load(&t, p) == 0, "%s", tl_errmsg());
    if (t) {
      CHECK(!strcmp(tl_tokenizer_id_to_token(t, 262), "\xC4\xA0the"));
      /* sha256 of the file as listed in the fixtures README */
      CHECK(!strcmp(tl_tokenizer_hash(t), "f4b816122a84b1b1947731284efdb47e50308dbb71f8a65f2d6324419b1592d8"));
      tl_tokenizer_free(t);
    }
    free(p);
  }
  struct { const char *rel; int32_t vocab, eos, bos; const char *eos_text; int adds_bos; int64_t mml; } cases[] = {
      {"tokenizers/gpt2/tokenizer.json", 50257, 50256, -1, "<|endoftext|>", 0, INT64_MAX},
      {"tokenizers/neox-20b/tokenizer.json", 50281, 0, -1, "<|endoftext|>", 0, INT64_MAX},
      {"tokenizers/stories260k/tokenizer.json", 512, 2, 1, "</s>", 1, INT64_MAX},
      {"models/stories260k/tokenizer.json", 512, 2, 1, "</s>", 1, 512},
  };
  for (int i = 0; i < 4; i++) {
    char *p = tl_sprintf("%s/%s", fx, cases[i].rel);
    tl_tokenizer *t = NULL;
    CHECKF(tl_tokenizer_load(&t, p) == 0, "%s", tl_errmsg());
    if (t) {
      CHECKF(tl_tokenizer_vocab_size(t) == cases[i].vocab, "%s", p);
      CHECKF(tl_tokenizer_eos_id(t) == cases[i].eos, "%s", p);
      CHECKF(tl_tokenizer_bos_id(t) == cases[i].bos, "%s", p);
      CHECKF(tl_tokenizer_eos_text(t) && !strcmp(tl_tokenizer_eos_text(t), cases[i].eos_text), "%s", p);
      CHECKF(tl_tokenizer_adds_bos(t) == cases[i].adds_bos, "%s", p);
      CHECKF(tl_tokenizer_model_max_length(t) == cases[i].mml, "%s", p);
      CHECK(strlen(tl_tokenizer_hash(t)) == 64);
      CHECK(tl_tokenizer_id_to_token(t, cases[i].vocab) == NULL && tl_tokenizer_id_to_token(t, -1) == NULL);
      CHECK(!strcmp(tl_tokenizer_id_to_token(t, cases[i].eos), cases[i].eos_text));
      tl_tokenizer_free(t);
    }
    free(p);
  }
  char *cmd = tl_sprintf("rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
  free(cmd);
  return tl_test_finish("test_tokenizer_errors");
}
