/* Loading a Hugging Face tokenizer.json into the structures of tok_internal.h.
 * Every field that is read is validated; errors are one line naming the file and
 * the field. Supported: model BPE; normalizers NFC, Prepend, Replace (string
 * pattern), Sequence; pre-tokenizer ByteLevel; post-processors ByteLevel,
 * TemplateProcessing, BertProcessing, RobertaProcessing, Sequence; decoders
 * ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence. */
#include <cjson/cJSON.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode.h"

/* ---- JSON helpers ---- */
typedef struct { const char *path; } ctx;

static const cJSON *get_field(const cJSON *obj, const char *name) {
  return obj ? cJSON_GetObjectItemCaseSensitive(obj, name) : NULL;
}
static int is_null(const cJSON *j) { return j == NULL || cJSON_IsNull(j); }

static int get_bool(ctx *c, const cJSON *obj, const char *name, const char *where, int def, int *out) {
  const cJSON *j = get_field(obj, name);
  if (is_null(j)) { *out = def; return 0; }
  if (!cJSON_IsBool(j)) return tl_fail("%s: %s.%s: expected true or false", c->path, where, name);
  *out = cJSON_IsTrue(j);
  return 0;
}
static int get_string(ctx *c, const cJSON *obj, const char *name, const char *where, int required,
                      const char **out) {
  const cJSON *j = get_field(obj, name);
  *out = NULL;
  if (is_null(j)) {
    if (required) return tl_fail("%s: %s: missing field '%s'", c->path, where, name);
    return 0;
  }
  if (!cJSON_IsString(j)) return tl_fail("%s: %s.%s: expected a string", c->path, where, name);
  *out = j->valuestring;
  return 0;
}
static int json_int(const cJSON *j, long lo, long hi, long *out) {
  if (!cJSON_IsNumber(j)) return -1;
  double d = j->valuedouble;
  if (!(d >= (double)lo && d <= (double)hi) || d != (double)(long)d) return -1;
  *out = (long)d;
  return 0;
}

/* ---- normalizer / decoder parsing ---- */
static void push_step(tok_step **steps, int *n, tok_step s) {
  *steps = tl_realloc(*steps, (size_t)(*n + 1) * sizeof(tok_step));
  (*steps)[(*n)++] = s;
}

/* Replace steps take {"pattern": {"String": s}, "content": c}; regex patterns are not supported. */
static int parse_replace(ctx *c, const cJSON *j, const char *where, tok_step *s) {
  const cJSON *pat = get_field(j, "pattern");
  const char *str = NULL, *content = NULL;
  if (!cJSON_IsObject(pat)) return tl_fail("%s: %s.pattern: expected an object {\"String\": ...}", c->path, where);
  TL_TRY(get_string(c, pat, "String", where, 0, &str));
  if (!str) return tl_fail("%s: %s.pattern: only {\"String\": ...} patterns are supported", c->path, where);
  if (!*str) return tl_fail("%s: %s.pattern.String: expected a non-empty string", c->path, where);
  TL_TRY(get_string(c, j, "content", where, 1, &content));
  s->a = tl_strdup(str);
  s->b = tl_strdup(content);
  return 0;
}

/* Normalizers and decoders are both a step or a Sequence of them (nested up to
 * depth 8), flattened here into one list of steps. `what` names the field
 * ("normalizer" / "decoder"), `list` the Sequence's array ("normalizers" /
 * "decoders"); parse_one fills a step from an object of any other type. With
 * skip_null a null (or absent) object is no step, as a normalizer may be null. */
typedef int (*step_fn)(ctx *c, const cJSON *j, const char *type, tok_step *s);
static int parse_steps(ctx *c, const cJSON *j, int depth, int skip_null, const char *what, const char *list,
                       step_fn parse_one, tok_step **steps, int *n) {
  if (skip_null && is_null(j)) return 0;
  if (!cJSON_IsObject(j) || depth > 8) return tl_fail("%s: %s: expected an object", c->path, what);
  const char *type;
  TL_TRY(get_string(c, j, "type", what, 1, &type));
  if (!strcmp(type, "Sequence")) {
    const cJSON *items = get_field(j, list), *e;
    if (!cJSON_IsArray(items)) return tl_fail("%s: %s.%s: expected an array", c->path, what, list);
    cJSON_ArrayForEach(e, items) TL_TRY(parse_steps(c, e, depth + 1, skip_null, what, list, parse_one, steps, n));
    return 0;
  }
  tok_step s = {0};
  TL_TRY(parse_one(c, j, type, &s));
  push_step(steps, n, s);
  return 0;
}

static int normalizer_step(ctx *c, const cJSON *j, const char *type, tok_step *s) {
  if (!strcmp(type, "NFC")) {
    s->type = NORM_NFC;
  } else if (!strcmp(type, "Prepend")) {
    const char *p;
    TL_TRY(get_string(c, j, "prepend", "normalizer", 1, &p));
    s->type = NORM_PREPEND;
    s->a = tl_strdup(p);
  } else if (!strcmp(type, "Replace")) {
    s->type = NORM_REPLACE;
    TL_TRY(parse_replace(c, j, "normalizer", s));
  } else {
    return tl_fail("%s: normalizer.type: unsupported type '%s' (expected NFC, Prepend, Replace or Sequence)",
                   c->path, type);
  }
  return 0;
}

static int decoder_step(ctx *c, const cJSON *j, const char *type, tok_step *s) {
  if (!strcmp(type, "ByteLevel")) {
    s->type = DEC_BYTELEVEL;
  } else if (!strcmp(type, "ByteFallback")) {
    s->type = DEC_BYTEFALLBACK;
  } else if (!strcmp(type, "Fuse")) {
    s->type = DEC_FUSE;
  } else if (!strcmp(type, "Replace")) {
    s->type = DEC_REPLACE;
    TL_TRY(parse_replace(c, j, "decoder", s));
  } else if (!strcmp(type, "Strip")) {
    const char *content;
    long a, b;
    TL_TRY(get_string(c, j, "content", "decoder", 1, &content));
    int len;
    if (!*content || (size_t)(tl_utf8_decode((const unsigned char *)content, strlen(content), &len), len) != strlen(content))
      return tl_fail("%s: decoder.content: expected a single character", c->path);
    if (json_int(get_field(j, "start"), 0, 1 << 20, &a) || json_int(get_field(j, "stop"), 0, 1 << 20, &b))
      return tl_fail("%s: decoder: Strip needs integer 'start' and 'stop' >= 0", c->path);
    s->type = DEC_STRIP;
    s->a = tl_strdup(content);
    s->start = (int)a;
    s->stop = (int)b;
  } else if (!strcmp(type, "Metaspace")) {
    const char *rep, *scheme;
    int add_prefix = 1;
    TL_TRY(get_string(c, j, "replacement", "decoder", 1, &rep));
    TL_TRY(get_string(c, j, "prepend_scheme", "decoder", 0, &scheme));
    TL_TRY(get_bool(c, j, "add_prefix_space", "decoder", 1, &add_prefix));
    s->type = DEC_METASPACE;
    s->a = tl_strdup(rep);
    s->flag = scheme ? strcmp(scheme, "never") != 0 : add_prefix;
  } else {
    return tl_fail("%s: decoder.type: unsupported type '%s' (expected ByteLevel, Replace, ByteFallback, "
                   "Fuse, Strip, Metaspace or Sequence)", c->path, type);
  }
  return 0;
}

/* The id of a token named in a post-processor: an added token or a vocab entry. */
static int32_t token_id_by_name(const tl_tokenizer *t, const char *name) {
  for (int i = 0; i < t->nadded; i++)
    if (!strcmp(t->added[i].name, name)) return t->added[i].id;
  if (t->id_token)
    for (int32_t id = 0; id < t->vocab_size; id++)
      if (t->id_token[id] && !strcmp(t->id_token[id], name)) return id;
  return -1;
}

static void push_ids(int32_t **ids, int *n, const int32_t *add, int nadd) {
  *ids = tl_realloc(*ids, (size_t)(*n + nadd + 1) * sizeof(int32_t));
  memcpy(*ids + *n, add, (size_t)nadd * sizeof(int32_t));
  *n += nadd;
}

static int parse_post(ctx *c, tl_tokenizer *t, const cJSON *j, int depth) {
  if (is_null(j)) return 0;
  if (!cJSON_IsObject(j) || depth > 8) return tl_fail("%s: post_processor: expected an object", c->path);
  const char *type;
  TL_TRY(get_string(c, j, "type", "post_processor", 1, &type));
  if (!strcmp(type, "ByteLevel") || !strcmp(type, "RobertaProcessing")) { /* offsets: spaces trimmed off */
    TL_TRY(get_bool(c, j, "trim_offsets", "post_processor", 1, &t->post_trim_offsets));
    TL_TRY(get_bool(c, j, "add_prefix_space", "post_processor", 1, &t->post_prefix_space));
    if (!strcmp(type, "ByteLevel")) return 0;
  }
  if (!strcmp(type, "Sequence")) {
    const cJSON *list = get_field(j, "processors"), *e;
    if (!cJSON_IsArray(list)) return tl_fail("%s: post_processor.processors: expected an array", c->path);
    cJSON_ArrayForEach(e, list) TL_TRY(parse_post(c, t, e, depth + 1));
    return 0;
  }
  if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing")) {
    long cls, sep;
    const cJSON *jc = get_field(j, "cls"), *js = get_field(j, "sep");
    if (!cJSON_IsArray(jc) || cJSON_GetArraySize(jc) != 2 || json_int(cJSON_GetArrayItem(jc, 1), 0, INT32_MAX, &cls) ||
        !cJSON_IsArray(js) || cJSON_GetArraySize(js) != 2 || json_int(cJSON_GetArrayItem(js, 1), 0, INT32_MAX, &sep))
      return tl_fail("%s: post_processor: %s needs 'cls' and 'sep' as [token, id]", c->path, type);
    int32_t a = (int32_t)cls, b = (int32_t)sep;
    push_ids(&t->post_prefix, &t->npost_prefix, &a, 1);
    push_ids(&t->post_suffix, &t->npost_suffix, &b, 1);
    return 0;
  }
  if (strcmp(type, "TemplateProcessing"))
    return tl_fail("%s: post_processor.type: unsupported type '%s' (expected TemplateProcessing, ByteLevel, "
                   "BertProcessing, RobertaProcessing or Sequence)", c->path, type);
  const cJSON *single = get_field(j, "single"), *specials = get_field(j, "special_tokens"), *item;
  if (!cJSON_IsArray(single)) return tl_fail("%s: post_processor.single: expected an array", c->path);
  int seen_seq = 0;
  cJSON_ArrayForEach(item, single) {
    const cJSON *sp = get_field(item, "SpecialToken"), *seq = get_field(item, "Sequence");
    if (cJSON_IsObject(seq)) { seen_seq = 1; continue; }
    const char *name;
    if (!cJSON_IsObject(sp)) return tl_fail("%s: post_processor.single: expected SpecialToken or Sequence items", c->path);
    TL_TRY(get_string(c, sp, "id", "post_processor.single.SpecialToken", 1, &name));
    const cJSON *def = get_field(specials, name), *ids = get_field(def, "ids"), *e;
    if (!cJSON_IsArray(ids))
      return tl_fail("%s: post_processor.special_tokens: no entry with 'ids' for '%s'", c->path, name);
    cJSON_ArrayForEach(e, ids) {
      long v;
      if (json_int(e, 0, INT32_MAX, &v)) return tl_fail("%s: post_processor.special_tokens.%s.ids: expected ids", c->path, name);
      int32_t id = (int32_t)v;
      if (seen_seq) push_ids(&t->post_suffix, &t->npost_suffix, &id, 1);
      else push_ids(&t->post_prefix, &t->npost_prefix, &id, 1);
    }
  }
  if (!seen_seq) return tl_fail("%s: post_processor.single: no Sequence item", c->path);
  return 0;
}

/* ---- added tokens ---- */
static void trie_add(tok_trie *tr, const char *s, size_t len, int token) {
  if (tr->n == 0) {
    tr->cap = 64;
    tr->nodes = tl_malloc((size_t)tr->cap * sizeof(tok_trie_node));
    tr->nodes[0] = (tok_trie_node){-1, -1, -1, 0};
    tr->n = 1;
  }
  unsigned char b0 = (unsigned char)s[0];
  if (!tr->first[b0] && tr->nfirst < 4) tr->first_bytes[tr->nfirst] = b0;
  if (!tr->first[b0]) tr->nfirst++;
  tr->first[b0] = 1;
  int node = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char b = (unsigned char)s[i];
    int ch = tr->nodes[node].child;
    while (ch >= 0 && tr->nodes[ch].byte != b) ch = tr->nodes[ch].sibling;
    if (ch < 0) {
      if (tr->n == tr->cap) { tr->cap *= 2; tr->nodes = tl_realloc(tr->nodes, (size_t)tr->cap * sizeof(tok_trie_node)); }
      ch = tr->n++;
      tr->nodes[ch] = (tok_trie_node){-1, tr->nodes[node].child, -1, b};
      tr->nodes[node].child = ch;
    }
    node = ch;
  }
  if (tr->nodes[node].token < 0) tr->nodes[node].token = token; /* first definition wins */
  tr->ntokens++;
}

static int parse_added(ctx *c, tl_tokenizer *t, const cJSON *list) {
  if (is_null(list)) return 0;
  if (!cJSON_IsArray(list)) return tl_fail("%s: added_tokens: expected an array", c->path);
  int n = cJSON_GetArraySize(list), i = 0;
  t->added = tl_calloc((size_t)n + 1, sizeof(tok_added));
  const cJSON *e;
  cJSON_ArrayForEach(e, list) {
    char where[64];
    snprintf(where, sizeof where, "added_tokens[%d]", i);
    const char *content;
    long id;
    if (!cJSON_IsObject(e)) return tl_fail("%s: %s: expected an object", c->path, where);
    TL_TRY(get_string(c, e, "content", where, 1, &content));
    if (!*content) return tl_fail("%s: %s.content: expected a non-empty string", c->path, where);
    if (json_int(get_field(e, "id"), 0, INT32_MAX - 1, &id))
      return tl_fail("%s: %s.id: expected a non-negative integer", c->path, where);
    tok_added *a = &t->added[i];
    a->content = tl_strdup(content);
    a->name = tl_strdup(content);
    a->len = strlen(content);
    a->id = (int32_t)id;
    t->nadded = ++i; /* counted now: tl_tokenizer_free frees its strings if a flag below is bad */
    TL_TRY(get_bool(c, e, "special", where, 0, &a->special));
    TL_TRY(get_bool(c, e, "lstrip", where, 0, &a->lstrip));
    TL_TRY(get_bool(c, e, "rstrip", where, 0, &a->rstrip));
    TL_TRY(get_bool(c, e, "single_word", where, 0, &a->single_word));
    TL_TRY(get_bool(c, e, "normalized", where, !a->special, &a->normalized));
  }
  return 0;
}

/* ---- the BPE model ---- */
static int parse_model(ctx *c, tl_tokenizer *t, const cJSON *model) {
  if (!cJSON_IsObject(model)) return tl_fail("%s: model: missing field 'model' (expected an object)", c->path);
  const char *type, *unk;
  TL_TRY(get_string(c, model, "type", "model", 0, &type));
  if (type && strcmp(type, "BPE"))
    return tl_fail("%s: model.type: unsupported model type '%s' (expected BPE)", c->path, type);
  const cJSON *vocab = get_field(model, "vocab"), *merges = get_field(model, "merges"), *e;
  if (!cJSON_IsObject(vocab)) return tl_fail("%s: model.vocab: missing or not an object", c->path);
  if (!cJSON_IsArray(merges)) return tl_fail("%s: model.merges: missing or not an array", c->path);
  const char *prefix, *suffix;
  TL_TRY(get_string(c, model, "continuing_subword_prefix", "model", 0, &prefix));
  TL_TRY(get_string(c, model, "end_of_word_suffix", "model", 0, &suffix));
  if ((prefix && *prefix) || (suffix && *suffix))
    return tl_fail("%s: model: continuing_subword_prefix/end_of_word_suffix are not supported", c->path);
  const cJSON *dropout = get_field(model, "dropout");
  if (!is_null(dropout) && !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0))
    return tl_fail("%s: model.dropout: BPE dropout is not supported (expected null)", c->path);
  TL_TRY(get_bool(c, model, "fuse_unk", "model", 0, &t->fuse_unk));
  TL_TRY(get_bool(c, model, "byte_fallback", "model", 0, &t->byte_fallback));
  TL_TRY(get_bool(c, model, "ignore_merges", "model", 0, &t->ignore_merges));

  /* vocab size: the largest id among vocab and added tokens, plus one */
  long maxid = -1;
  int nvocab = cJSON_GetArraySize(vocab);
  tok_strmap raw; /* the vocab by its own strings, to place the added tokens */
  tok_strmap_init(&raw, (size_t)nvocab);
  cJSON_ArrayForEach(e, vocab) {
    long id;
    if (json_int(e, 0, INT32_MAX - 1, &id)) {
      tok_strmap_free(&raw);
      return tl_fail("%s: model.vocab['%s']: expected a non-negative integer id", c->path, e->string);
    }
    if (id > maxid) maxid = id;
    tok_strmap_put(&raw, e->string, strlen(e->string), (int32_t)id);
  }
  /* Added tokens get their ids as HF's add_tokens gives them (the ids written in
   * the file are only checked): a content already known keeps its id, others
   * take the next id after the model's vocabulary and the previous added tokens. */
  tok_strmap added_ids;
  tok_strmap_init(&added_ids, (size_t)t->nadded + 1);
  long max_added = -1;
  for (int i = 0; i < t->nadded; i++) {
    tok_added *a = &t->added[i];
    int32_t id = tok_strmap_get(&added_ids, a->content, a->len);
    if (id < 0) id = tok_strmap_get(&raw, a->content, a->len);
    if (id < 0) id = (int32_t)(max_added < 0 ? nvocab : (max_added >= nvocab || nvocab == 0) ? max_added + 1 : nvocab);
    if (id != a->id)
      tl_warn("%s: added_tokens[%d] '%s' has id %d in the file but gets id %d", c->path, i, a->content, a->id, id);
    a->id = id;
    tok_strmap_put(&added_ids, a->content, a->len, id);
    if (id > max_added) max_added = id;
    if (id > maxid) maxid = id;
  }
  tok_strmap_free(&added_ids);
  tok_strmap_free(&raw);
  if (maxid < 0) return tl_fail("%s: model.vocab: empty", c->path);
  /* the id tables below hold one slot per id up to the largest: a few holes are
   * fine, but a 30-byte file naming id 2^31 would ask for 32 GB */
  long listed = (long)nvocab + t->nadded;
  if (maxid >= 4 * listed + 1024)
    return tl_fail("%s: model.vocab: id %ld is far beyond the %ld tokens listed (damaged file?)", c->path, maxid,
                   listed);
  t->vocab_size = (int32_t)(maxid + 1);
  t->id_token = tl_calloc((size_t)t->vocab_size, sizeof(char *));
  t->id_token_len = tl_calloc((size_t)t->vocab_size, sizeof(size_t));

  tok_strmap_init(&t->vocab, (size_t)nvocab);
  tl_buf tmp = {0};
  cJSON_ArrayForEach(e, vocab) {
    int32_t id = (int32_t)e->valuedouble;
    size_t len = strlen(e->string);
    if (!t->id_token[id]) { t->id_token[id] = tl_strdup(e->string); t->id_token_len[id] = len; }
    if (t->byte_level) {
      tmp.len = 0;
      /* tokens with characters outside the byte alphabet can never come out of byte-level BPE */
      if (tok_bytelevel_decode(e->string, len, &tmp)) tok_strmap_put(&t->vocab, tmp.data, tmp.len, id);
    } else {
      tok_strmap_put(&t->vocab, e->string, len, id);
    }
  }

  /* merges: rank = position; a pair listed twice keeps its last rank */
  size_t nm = (size_t)cJSON_GetArraySize(merges);
  t->nmerge_slots = 16;
  while (t->nmerge_slots < nm * 2) t->nmerge_slots *= 2;
  t->merges = tl_malloc(t->nmerge_slots * sizeof(tok_merge));
  for (size_t i = 0; i < t->nmerge_slots; i++) t->merges[i].key = UINT64_MAX;
  uint32_t rank = 0;
  tl_buf ab = {0};
  int rc = 0;
  cJSON_ArrayForEach(e, merges) {
    const char *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    if (cJSON_IsString(e)) {
      const char *sp = strchr(e->valuestring, ' ');
      if (sp && !strchr(sp + 1, ' ')) {
        a = e->valuestring; alen = (size_t)(sp - a);
        b = sp + 1; blen = strlen(b);
      }
    } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 && cJSON_IsString(cJSON_GetArrayItem(e, 0)) &&
               cJSON_IsString(cJSON_GetArrayItem(e, 1))) {
      a = cJSON_GetArrayItem(e, 0)->valuestring; alen = strlen(a);
      b = cJSON_GetArrayItem(e, 1)->valuestring; blen = strlen(b);
    }
    if (!a || !alen || !blen) {
      rc = tl_fail("%s: model.merges[%u]: expected \"A B\" or [\"A\", \"B\"]", c->path, rank);
      break;
    }
    int32_t ida, idb, idab;
    ab.len = 0;
    if (t->byte_level) {
      if (!tok_bytelevel_decode(a, alen, &ab)) ab.len = 0;
      size_t la = ab.len;
      ida = la ? tok_strmap_get(&t->vocab, ab.data, la) : -1;
      size_t before = ab.len;
      if (!tok_bytelevel_decode(b, blen, &ab)) ab.len = before;
      idb = ab.len > before ? tok_strmap_get(&t->vocab, ab.data + before, ab.len - before) : -1;
      idab = tok_strmap_get(&t->vocab, ab.data, ab.len);
    } else {
      tl_buf_append(&ab, a, alen);
      tl_buf_append(&ab, b, blen);
      ida = tok_strmap_get(&t->vocab, a, alen);
      idb = tok_strmap_get(&t->vocab, b, blen);
      idab = tok_strmap_get(&t->vocab, ab.data, ab.len);
    }
    if (ida < 0 || idb < 0 || idab < 0) {
      rc = tl_fail("%s: model.merges[%u]: '%.*s' + '%.*s': %s not in model.vocab", c->path, rank, (int)alen, a,
                   (int)blen, b, ida < 0 ? "first part" : idb < 0 ? "second part" : "merged token");
      break;
    }
    uint64_t key = ((uint64_t)(uint32_t)ida << 32) | (uint32_t)idb;
    size_t mask = t->nmerge_slots - 1, i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & mask;
    while (t->merges[i].key != UINT64_MAX && t->merges[i].key != key) i = (i + 1) & mask;
    t->merges[i] = (tok_merge){key, rank, idab};
    rank++;
  }
  tl_buf_free(&ab);
  tl_buf_free(&tmp);
  if (rc) return rc;

  for (int b = 0; b < 256; b++) {
    unsigned char byte = (unsigned char)b;
    t->byte_id[b] = t->byte_level ? tok_strmap_get(&t->vocab, &byte, 1) : -1;
    char name[8];
    snprintf(name, sizeof name, "<0x%02X>", b);
    t->byte_token[b] = t->byte_level ? -1 : tok_strmap_get(&t->vocab, name, 6);
  }
  t->unk_id = -1;
  TL_TRY(get_string(c, model, "unk_token", "model", 0, &unk));
  if (unk) {
    t->unk_id = t->byte_level ? -1 : tok_strmap_get(&t->vocab, unk, strlen(unk));
    if (t->unk_id < 0) t->unk_id = token_id_by_name(t, unk);
    if (t->unk_id < 0) return tl_fail("%s: model.unk_token: '%s' is not in model.vocab", c->path, unk);
  }
  return 0;
}

/* tokenizer_config.json beside tokenizer.json: model_max_length and the EOS/BOS names. */
static const char *config_token(const cJSON *cfg, const char *name) {
  const cJSON *j = get_field(cfg, name);
  if (cJSON_IsString(j)) return j->valuestring;
  const cJSON *content = get_field(j, "content");
  return cJSON_IsString(content) ? content->valuestring : NULL;
}

static int load_config(tl_tokenizer *t) {
  t->model_max_length = INT64_MAX;
  char *dir = tl_strdup(t->path);
  char *slash = strrchr(dir, '/');
  char *cfg_path;
  if (slash) { slash[1] = 0; cfg_path = tl_sprintf("%stokenizer_config.json", dir); }
  else cfg_path = tl_strdup("tokenizer_config.json");
  free(dir);
  const char *eos = NULL, *bos = NULL;
  cJSON *cfg = NULL;
  int rc = 0;
  if (tl_file_exists(cfg_path)) {
    char *data;
    size_t len;
    if (tl_read_file(cfg_path, &data, &len)) { free(cfg_path); return -1; }
    cfg = cJSON_ParseWithLength(data, len);
    free(data);
    if (!cJSON_IsObject(cfg)) {
      rc = tl_fail("%s: not a valid JSON object", cfg_path);
      goto done;
    }
    const cJSON *mml = get_field(cfg, "model_max_length");
    if (!is_null(mml)) {
      double d = cJSON_IsNumber(mml) ? mml->valuedouble : -1;
      if (!(d >= 1) || (d < 9.2e18 && d != (double)(int64_t)d)) {
        rc = tl_fail("%s: model_max_length: expected a positive integer", cfg_path);
        goto done;
      }
      /* HF writes 1e30 for "no limit": anything that large stays INT64_MAX */
      if (d < 9.2e18) t->model_max_length = (int64_t)d;
    }
    eos = config_token(cfg, "eos_token");
    bos = config_token(cfg, "bos_token");
  }
  /* EOS: the config's, else the usual end-of-text tokens */
  t->eos_id = -1;
  static const char *eos_names[] = {"<|endoftext|>", "</s>"};
  if (eos) t->eos_id = token_id_by_name(t, eos);
  for (int i = 0; i < 2 && t->eos_id < 0 && !eos; i++) {
    t->eos_id = token_id_by_name(t, eos_names[i]);
    if (t->eos_id >= 0) eos = eos_names[i];
  }
  if (eos && t->eos_id < 0) {
    rc = tl_fail("%s: eos_token: '%s' is not a token of %s", cfg_path, eos, t->path);
    goto done;
  }
  /* the name as written in text (e.g. when documents are joined with it) */
  t->eos_text = t->eos_id >= 0 ? tl_strdup(eos) : NULL;
  /* BOS: the config's, else what the post-processor puts first, else <s> */
  t->bos_id = bos ? token_id_by_name(t, bos) : -1;
  if (t->bos_id < 0 && t->npost_prefix > 0) t->bos_id = t->post_prefix[0];
  if (t->bos_id < 0 && !bos) t->bos_id = token_id_by_name(t, "<s>");
done:
  cJSON_Delete(cfg);
  free(cfg_path);
  return rc;
}

static _Atomic uint64_t tok_serial;

static int load_json(tl_tokenizer *t, const char *data, size_t len) {
  ctx c = {t->path};
  const char *err_at = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(data, len, &err_at, 0);
  if (!root) {
    long off = err_at ? (long)(err_at - data) : -1;
    return tl_fail("%s: not valid JSON (parse error near byte %ld)", t->path, off);
  }
  int rc = -1;
  if (!cJSON_IsObject(root)) { tl_fail("%s: expected a JSON object at the top level", t->path); goto out; }
  if (!get_field(root, "model")) { tl_fail("%s: missing field 'model'", t->path); goto out; }

  /* the pre-tokenizer decides how the model's vocabulary is keyed */
  const cJSON *pre = get_field(root, "pre_tokenizer");
  if (!is_null(pre)) {
    const char *type;
    if (!cJSON_IsObject(pre)) { tl_fail("%s: pre_tokenizer: expected an object or null", t->path); goto out; }
    if (get_string(&c, pre, "type", "pre_tokenizer", 1, &type)) goto out;
    if (strcmp(type, "ByteLevel")) {
      tl_fail("%s: pre_tokenizer.type: unsupported type '%s' (expected ByteLevel or null)", t->path, type);
      goto out;
    }
    t->pre_bytelevel = t->byte_level = 1;
    if (get_bool(&c, pre, "add_prefix_space", "pre_tokenizer", 1, &t->pre_add_prefix_space)) goto out;
    if (get_bool(&c, pre, "use_regex", "pre_tokenizer", 1, &t->pre_use_regex)) goto out;
  }
  if (parse_added(&c, t, get_field(root, "added_tokens"))) goto out;
  if (parse_model(&c, t, get_field(root, "model"))) goto out;
  if (parse_steps(&c, get_field(root, "normalizer"), 0, 1, "normalizer", "normalizers", normalizer_step, &t->norm,
                  &t->nnorm))
    goto out;
  const cJSON *dec = get_field(root, "decoder");
  t->has_decoder = !is_null(dec);
  if (t->has_decoder && parse_steps(&c, dec, 0, 0, "decoder", "decoders", decoder_step, &t->dec, &t->ndec)) goto out;
  if (parse_post(&c, t, get_field(root, "post_processor"), 0)) goto out;
  for (int i = 0; i < t->npost_prefix; i++)
    if (t->post_prefix[i] >= t->vocab_size) { tl_fail("%s: post_processor: id %d out of range", t->path, t->post_prefix[i]); goto out; }
  for (int i = 0; i < t->npost_suffix; i++)
    if (t->post_suffix[i] >= t->vocab_size) { tl_fail("%s: post_processor: id %d out of range", t->path, t->post_suffix[i]); goto out; }
  t->adds_bos = t->npost_prefix > 0;
  for (int i = 0; i < t->nadded; i++) {
    tok_added *a = &t->added[i];
    /* normalized tokens are matched, and decoded, in their normalized form (as
     * HF does: with a Prepend normalizer "word" becomes "\u2581word") */
    if (a->normalized && t->nnorm > 0) {
      size_t n;
      char *norm = tok_normalize_copy(t, a->content, a->len, &n);
      free(a->content);
      a->content = norm;
      a->len = n;
    }
    if (a->len == 0) continue;
    /* two passes even without a normalizer: the pieces between raw matches are
     * searched separately, which matters for single_word checks at their edges */
    trie_add(a->normalized ? &t->trie_norm : &t->trie_raw, a->content, a->len, i);
  }
  for (int i = 0; i < t->nadded; i++) { /* decoding shows added tokens' own text */
    tok_added *a = &t->added[i];
    free(t->id_token[a->id]);
    t->id_token[a->id] = tl_strdup(a->content);
    t->id_token_len[a->id] = a->len;
  }
  rc = 0;
out:
  cJSON_Delete(root);
  return rc;
}

int tl_tokenizer_load(tl_tokenizer **out, const char *path) {
  *out = NULL;
  char *data;
  size_t len;
  if (tl_read_file(path, &data, &len)) return -1;
  tl_tokenizer *t = tl_calloc(1, sizeof *t);
  t->path = tl_strdup(path);
  tl_sha256_hex(data, len, t->hash);
  pthread_mutex_init(&t->cache_lock, NULL);
  t->serial = atomic_fetch_add(&tok_serial, 1) + 1;
  if (pthread_key_create(&t->cache_key, NULL) != 0) {
    free(data);
    pthread_mutex_destroy(&t->cache_lock);
    free(t->path);
    free(t);
    return tl_fail("%s: cannot create the per-thread cache key (too many tokenizers loaded)", path);
  }
  int rc = load_json(t, data, len);
  free(data);
  if (rc == 0) rc = load_config(t);
  if (rc) { tl_tokenizer_free(t); return -1; }
  *out = t;
  return 0;
}

static void free_steps(tok_step *s, int n) {
  for (int i = 0; i < n; i++) { free(s[i].a); free(s[i].b); }
  free(s);
}

void tl_tokenizer_free(tl_tokenizer *t) {
  if (!t) return;
  tok_caches_free(t);
  pthread_key_delete(t->cache_key);
  pthread_mutex_destroy(&t->cache_lock);
  tok_strmap_free(&t->vocab);
  free(t->merges);
  free_steps(t->norm, t->nnorm);
  free_steps(t->dec, t->ndec);
  free(t->post_prefix);
  free(t->post_suffix);
  for (int i = 0; i < t->nadded; i++) {
    free(t->added[i].content);
    free(t->added[i].name);
  }
  free(t->added);
  free(t->trie_raw.nodes);
  free(t->trie_norm.nodes);
  if (t->id_token)
    for (int32_t i = 0; i < t->vocab_size; i++) free(t->id_token[i]);
  free(t->id_token);
  free(t->id_token_len);
  free(t->eos_text);
  free(t->path);
  free(t);
}

int32_t tl_tokenizer_vocab_size(const tl_tokenizer *t) { return t->vocab_size; }
int32_t tl_tokenizer_eos_id(const tl_tokenizer *t) { return t->eos_id; }
int32_t tl_tokenizer_bos_id(const tl_tokenizer *t) { return t->bos_id; }
const char *tl_tokenizer_eos_text(const tl_tokenizer *t) { return t->eos_text; }
int tl_tokenizer_adds_bos(const tl_tokenizer *t) { return t->adds_bos; }
int64_t tl_tokenizer_model_max_length(const tl_tokenizer *t) { return t->model_max_length; }
const char *tl_tokenizer_hash(const tl_tokenizer *t) { return t->hash; }
const char *tl_tokenizer_id_to_token(const tl_tokenizer *t, int32_t id) {
  return id >= 0 && id < t->vocab_size ? t->id_token[id] : NULL;
}
