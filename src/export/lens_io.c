/* Lens folders: config.json + params.pt, as tuned-lens saves them.
 *
 * config.json is written exactly as the reference's json.dump(asdict(config)):
 * fields in declaration order, ", " and ": " separators, non-ASCII escaped, no
 * trailing newline. Reading follows TunedLensConfig.from_dict: unknown keys are
 * dropped with a warning, missing optional keys take their defaults. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tlens/core.h"
#include "tlens/export.h"
#include "tlens/hub.h"

/* ---- config.json ---- */

void tl_lens_config_free(tl_lens_config *c) {
  free(c->base_model_name_or_path);
  free(c->base_model_revision);
  free(c->unembed_hash);
  memset(c, 0, sizeof *c);
}

static int get_int_field(const cJSON *v, const char *label, const char *key, long lo, long hi, int *out) {
  if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
    return tl_fail("%s: \"%s\" must be an integer in [%ld, %ld]", label, key, lo, hi);
  *out = (int)v->valuedouble;
  return 0;
}

static int get_str_field(const cJSON *v, const char *label, const char *key, int nullable, char **out) {
  if (nullable && cJSON_IsNull(v)) {
    *out = NULL;
    return 0;
  }
  if (!cJSON_IsString(v)) return tl_fail("%s: \"%s\" must be a string%s", label, key, nullable ? " or null" : "");
  *out = tl_strdup(v->valuestring);
  return 0;
}

int tl_lens_config_parse(const char *json, size_t len, const char *label, tl_lens_config *c) {
  memset(c, 0, sizeof *c);
  c->bias = true;
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
  if (!root) {
    size_t at = end && end >= json ? (size_t)(end - json) : 0;
    return tl_fail("%s: invalid JSON near byte %zu", label, at);
  }
  int rc = 0, have_name = 0, have_d = 0, have_l = 0;
  if (!cJSON_IsObject(root)) {
    rc = tl_fail("%s: expected a JSON object", label);
    goto done;
  }
  if (cJSON_GetArraySize(root) > 256) {
    rc = tl_fail("%s: %d keys; a lens config has 7", label, cJSON_GetArraySize(root));
    goto done;
  }
  for (const cJSON *v = root->child; v && rc == 0; v = v->next) {
    const char *k = v->string;
    for (const cJSON *u = root->child; u != v; u = u->next)
      if (!strcmp(u->string, k)) rc = tl_fail("%s: key \"%s\" appears twice", label, k);
    if (rc) break;
    if (!strcmp(k, "base_model_name_or_path")) {
      free(c->base_model_name_or_path);
      rc = get_str_field(v, label, k, 0, &c->base_model_name_or_path);
      have_name = 1;
    } else if (!strcmp(k, "d_model")) {
      rc = get_int_field(v, label, k, 1, 1 << 20, &c->d_model);
      have_d = 1;
    } else if (!strcmp(k, "num_hidden_layers")) {
      rc = get_int_field(v, label, k, 1, 1 << 16, &c->num_hidden_layers);
      have_l = 1;
    } else if (!strcmp(k, "bias")) {
      if (!cJSON_IsBool(v)) rc = tl_fail("%s: \"bias\" must be true or false", label);
      else if (!cJSON_IsTrue(v)) rc = tl_fail("%s: \"bias\" is false; only lenses with translator biases are supported", label);
    } else if (!strcmp(k, "base_model_revision")) {
      rc = get_str_field(v, label, k, 1, &c->base_model_revision);
    } else if (!strcmp(k, "unembed_hash")) {
      rc = get_str_field(v, label, k, 1, &c->unembed_hash);
    } else if (!strcmp(k, "lens_type")) {
      if (!cJSON_IsString(v) || strcmp(v->valuestring, "linear_tuned_lens"))
        rc = tl_fail("%s: \"lens_type\" must be \"linear_tuned_lens\"", label);
    } else {
      tl_warn("%s: ignoring unrecognized config key '%s'", label, k);
    }
  }
  if (rc == 0 && !have_name) rc = tl_fail("%s: missing \"base_model_name_or_path\"", label);
  if (rc == 0 && !have_d) rc = tl_fail("%s: missing \"d_model\"", label);
  if (rc == 0 && !have_l) rc = tl_fail("%s: missing \"num_hidden_layers\"", label);
done:
  cJSON_Delete(root);
  if (rc) tl_lens_config_free(c);
  return rc;
}

int tl_lens_config_read(const char *path, tl_lens_config *c) {
  char *text;
  size_t len;
  memset(c, 0, sizeof *c);
  if (tl_read_file(path, &text, &len)) return -1;
  int rc = tl_lens_config_parse(text, len, path, c);
  free(text);
  return rc;
}

/* A JSON string as Python's json.dumps writes it (ensure_ascii): control
 * characters and every non-ASCII code point as \uXXXX (surrogate pairs above
 * U+FFFF); malformed UTF-8 bytes become U+FFFD. */
static void put_json_str(tl_buf *b, const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  tl_buf_append(b, "\"", 1);
  while (*p) {
    unsigned c = *p;
    if (c == '"') { tl_buf_append(b, "\\\"", 2); p++; continue; }
    if (c == '\\') { tl_buf_append(b, "\\\\", 2); p++; continue; }
    if (c == '\n') { tl_buf_append(b, "\\n", 2); p++; continue; }
    if (c == '\r') { tl_buf_append(b, "\\r", 2); p++; continue; }
    if (c == '\t') { tl_buf_append(b, "\\t", 2); p++; continue; }
    if (c == '\b') { tl_buf_append(b, "\\b", 2); p++; continue; }
    if (c == '\f') { tl_buf_append(b, "\\f", 2); p++; continue; }
    if (c < 0x80) {
      if (c < 0x20) tl_buf_printf(b, "\\u%04x", c);
      else tl_buf_append(b, p, 1);
      p++;
      continue;
    }
    /* decode one UTF-8 sequence */
    unsigned cp = 0xfffd;
    int n = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
    if (c >= 0xf5) n = 0;
    int ok = n > 0;
    for (int k = 1; ok && k < n; k++) ok = (p[k] & 0xc0) == 0x80;
    if (ok) {
      cp = n == 2 ? (c & 0x1f) : n == 3 ? (c & 0x0f) : (c & 0x07);
      for (int k = 1; k < n; k++) cp = cp << 6 | (p[k] & 0x3f);
      if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) ok = 0;
    }
    if (!ok) {
      cp = 0xfffd;
      n = 1;
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      tl_buf_printf(b, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
    } else {
      tl_buf_printf(b, "\\u%04x", cp);
    }
    p += n;
  }
  tl_buf_append(b, "\"", 1);
}

char *tl_lens_config_json(const tl_lens_config *c) {
  tl_buf b = {0};
  tl_buf_append(&b, "{\"base_model_name_or_path\": ", 28);
  put_json_str(&b, c->base_model_name_or_path ? c->base_model_name_or_path : "");
  tl_buf_printf(&b, ", \"d_model\": %d, \"num_hidden_layers\": %d, \"bias\": %s, \"base_model_revision\": ", c->d_model,
                c->num_hidden_layers, c->bias ? "true" : "false");
  if (c->base_model_revision) put_json_str(&b, c->base_model_revision);
  else tl_buf_append(&b, "null", 4);
  tl_buf_append(&b, ", \"unembed_hash\": ", 18);
  if (c->unembed_hash) put_json_str(&b, c->unembed_hash);
  else tl_buf_append(&b, "null", 4);
  tl_buf_append(&b, ", \"lens_type\": \"linear_tuned_lens\"}", 35);
  tl_buf_append(&b, "", 1);
  return (char *)b.data;
}

static int check_config(const tl_lens_config *c, const char *label) {
  if (c->d_model < 1 || c->d_model > (1 << 20)) return tl_fail("%s: d_model %d out of range", label, c->d_model);
  if (c->num_hidden_layers < 1 || c->num_hidden_layers > (1 << 16))
    return tl_fail("%s: num_hidden_layers %d out of range", label, c->num_hidden_layers);
  if (!c->bias) return tl_fail("%s: bias must be true", label);
  return 0;
}

int tl_lens_config_write(const char *path, const tl_lens_config *c) {
  if (check_config(c, path)) return -1;
  char *text = tl_lens_config_json(c);
  int rc = tl_write_file_atomic(path, text, strlen(text));
  free(text);
  return rc;
}

/* ---- lens folders ---- */

int tl_lens_dir_save(const char *dir, const tl_lens_config *c, const float *params, tl_dtype dtype) {
  if (check_config(c, dir)) return -1;
  if (tl_mkdirs(dir)) return -1;
  int L = c->num_hidden_layers;
  int64_t d = c->d_model, per = d * d + d;
  tl_pt_entry *e = tl_calloc((size_t)(2 * L), sizeof *e);
  char (*names)[32] = tl_malloc((size_t)(2 * L) * sizeof *names);
  for (int i = 0; i < L; i++) {
    snprintf(names[2 * i], 32, "%d.weight", i);
    snprintf(names[2 * i + 1], 32, "%d.bias", i);
    e[2 * i] = (tl_pt_entry){.name = names[2 * i], .ndim = 2, .shape = {d, d}, .data = params + i * per};
    e[2 * i + 1] = (tl_pt_entry){.name = names[2 * i + 1], .ndim = 1, .shape = {d}, .data = params + i * per + d * d};
  }
  /* params.pt first: a folder with a config.json is taken as complete */
  char *pt = tl_path_join(dir, "params.pt"), *cj = tl_path_join(dir, "config.json");
  int rc = tl_pt_save(pt, e, 2 * L, dtype, 0);
  if (rc == 0) rc = tl_lens_config_write(cj, c);
  free(pt);
  free(cj);
  free(names);
  free(e);
  return rc;
}

int tl_lens_dir_load(const char *name, const tl_lens_expect *expect, tl_lens_config *c, float **params,
                     int *hash_mismatch) {
  *params = NULL;
  memset(c, 0, sizeof *c);
  if (hash_mismatch) *hash_mismatch = 0;
  char *dir = NULL;
  TL_TRY(tl_lens_resolve(name, &dir));
  char *cj = tl_path_join(dir, "config.json"), *pt = tl_path_join(dir, "params.pt");
  free(dir);
  int rc = tl_lens_config_read(cj, c);
  tl_pt_file f = {0};
  if (rc) goto out;
  int L = c->num_hidden_layers;
  int64_t d = c->d_model;
  if (expect && expect->d_model > 0 && expect->d_model != d) {
    rc = tl_fail("%s: lens d_model %d does not match the model's hidden size %d", cj, c->d_model, expect->d_model);
    goto out;
  }
  if (expect && expect->num_layers > 0 && expect->num_layers != L) {
    rc = tl_fail("%s: lens has %d layers but the model has %d", cj, L, expect->num_layers);
    goto out;
  }
  if (expect && expect->unembed_hash && c->unembed_hash && strcmp(expect->unembed_hash, c->unembed_hash)) {
    tl_warn("%s: the unembedding matrix hash does not match the lens' hash (was the lens trained on another model?)", cj);
    if (hash_mismatch) *hash_mismatch = 1;
  }
  if ((rc = tl_pt_open(&f, pt))) goto out;
  if (f.n != 2 * L) {
    rc = tl_fail("%s: %d tensors, expected %d (\"<i>.weight\" and \"<i>.bias\" for %d layers)", pt, f.n, 2 * L, L);
    goto out;
  }
  int64_t per = d * d + d;
  *params = tl_malloc((size_t)(L * per) * sizeof **params);
  for (int i = 0; i < L && rc == 0; i++) {
    for (int k = 0; k < 2 && rc == 0; k++) {
      char name[32];
      snprintf(name, sizeof name, k == 0 ? "%d.weight" : "%d.bias", i);
      const tl_pt_tensor *t = tl_pt_find(&f, name);
      int64_t want[2] = {d, d};
      int nd = k == 0 ? 2 : 1;
      if (!t) {
        rc = tl_fail("%s: missing tensor '%s'", pt, name);
      } else if (t->ndim != nd || t->shape[0] != d || (nd == 2 && t->shape[1] != d)) {
        char got[96], exp[96];
        rc = tl_fail("%s: tensor '%s' has shape %s, expected %s", pt, name, tl_shape_str(t->ndim, t->shape, got, sizeof got),
                     tl_shape_str(nd, want, exp, sizeof exp));
      } else {
        float *dst = *params + i * per + (k == 0 ? 0 : d * d);
        tl_pt_to_f32(t, dst);
        /* a translator holding NaN or Inf turns every prediction through it into NaN */
        for (int64_t j = 0; j < t->numel && rc == 0; j++)
          if (!isfinite(dst[j]))
            rc = tl_fail("%s: tensor '%s' holds %s at element %lld: the lens is damaged", pt, name,
                         isnan(dst[j]) ? "NaN" : "Inf", (long long)j);
      }
    }
  }
out:
  tl_pt_close(&f);
  if (rc) {
    free(*params);
    *params = NULL;
    tl_lens_config_free(c);
  }
  free(cj);
  free(pt);
  return rc;
}

/* ---- lenses by hub id ---- */

#define LENS_REPO_ID "AlignmentResearch/tuned-lens" /* load_lens_artifacts' defaults */
#define LENS_REPO_TYPE "space"

void tl_lens_space_free(tl_lens_space *s) {
  free(s->repo_id), free(s->repo_type), free(s->repo), free(s->snapshot), free(s->fetch);
  memset(s, 0, sizeof *s);
}

int tl_lens_space_open(tl_lens_space *s) {
  memset(s, 0, sizeof *s);
  /* as the reference: a variable set to "" counts as unset */
  const char *id = getenv("TUNED_LENS_REPO_ID"), *type = getenv("TUNED_LENS_REPO_TYPE");
  if (id && *id && !tl_hub_valid_id(id))
    return tl_fail("TUNED_LENS_REPO_ID is '%s': not a hub repository id (expected ORG/NAME or NAME)", id);
  if (type && *type && !tl_hub_valid_type(type))
    return tl_fail("TUNED_LENS_REPO_TYPE is '%s': not a repository type (expected model, dataset or space)", type);
  s->repo_id = tl_strdup(id && *id ? id : LENS_REPO_ID);
  s->repo_type = tl_strdup(type && *type ? type : LENS_REPO_TYPE);
  char *cache = tl_hub_cache_dir(&s->from);
  s->repo = tl_hub_repo_dir(cache, s->repo_type, s->repo_id);
  free(cache);
  s->fetch = strcmp(s->repo_type, "model") ? tl_sprintf("huggingface-cli download %s --repo-type %s", s->repo_id, s->repo_type)
                                           : tl_sprintf("huggingface-cli download %s", s->repo_id);
  if (!tl_is_dir(s->repo)) return 0;
  char *what = tl_sprintf("lens repository %s '%s'", s->repo_type, s->repo_id);
  int rc = tl_hub_snapshot(s->repo, "main", what, s->fetch, &s->snapshot);
  free(what);
  if (rc) tl_lens_space_free(s);
  return rc;
}

void tl_lens_ids_free(char **ids, int n) {
  for (int i = 0; i < n; i++) free(ids[i]);
  free(ids);
}

/* true when dir/config.json and dir/params.pt both exist (links followed) */
static bool has_lens_files(const char *dir) {
  char *cj = tl_path_join(dir, "config.json"), *pt = tl_path_join(dir, "params.pt");
  bool ok = tl_file_exists(cj) && tl_file_exists(pt);
  free(cj), free(pt);
  return ok;
}

typedef struct {
  char **ids;
  int n, cap;
} id_list;

/* Every folder under dir (rel: its id so far) that holds a lens, depth first; the
 * reference globs lens/ ** /config.json and params.pt and keeps the folders with both. */
static void collect_lenses(const char *dir, const char *rel, int depth, id_list *l) {
  if (rel && has_lens_files(dir)) {
    if (l->n == l->cap) {
      l->cap = l->cap ? 2 * l->cap : 16;
      l->ids = tl_realloc(l->ids, (size_t)l->cap * sizeof *l->ids);
    }
    l->ids[l->n++] = tl_strdup(rel);
  }
  DIR *dp = depth < 8 ? opendir(dir) : NULL;
  if (!dp) return;
  for (struct dirent *e; (e = readdir(dp));) {
    if (e->d_name[0] == '.') continue;
    char *path = tl_path_join(dir, e->d_name);
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) { /* real folders: a snapshot links files, not folders */
      char *sub = rel ? tl_path_join(rel, e->d_name) : tl_strdup(e->d_name);
      collect_lenses(path, sub, depth + 1, l);
      free(sub);
    }
    free(path);
  }
  closedir(dp);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int tl_lens_space_list(const tl_lens_space *s, char ***ids, int *n) {
  id_list l = {0};
  if (s->snapshot) {
    char *root = tl_path_join(s->snapshot, "lens");
    collect_lenses(root, NULL, 0, &l);
    free(root);
  }
  if (l.n > 1) qsort(l.ids, (size_t)l.n, sizeof *l.ids, cmp_str);
  *ids = l.ids;
  *n = l.n;
  return 0;
}

/* "; cached lenses: a, b, ..." (at most 10 named), or "" when there are none. */
static char *cached_list(const tl_lens_space *s) {
  char **ids;
  int n;
  tl_buf b = {0};
  tl_lens_space_list(s, &ids, &n);
  for (int i = 0; i < n && i < 10; i++) tl_buf_printf(&b, "%s%s", i ? ", " : "; cached lenses: ", ids[i]);
  if (n > 10) tl_buf_printf(&b, ", ... (%d in all)", n);
  tl_buf_append(&b, "", 1);
  tl_lens_ids_free(ids, n);
  return (char *)b.data;
}

int tl_lens_resolve(const char *name, char **dir) {
  *dir = NULL;
  /* a local folder first, as load_lens_artifacts: it must hold both files */
  if (has_lens_files(name) || !tl_hub_valid_id(name)) {
    *dir = tl_strdup(name);
    return 0;
  }
  tl_lens_space s;
  TL_TRY(tl_lens_space_open(&s));
  char *sub = tl_sprintf("lens/%s", name), *found = s.snapshot ? tl_path_join(s.snapshot, sub) : NULL;
  char *broken = found && tl_is_dir(found) ? tl_hub_broken_link(found) : NULL;
  int rc = 0;
  if (broken) {
    rc = tl_fail("lens '%s': %s/%s links to a blob that is not in the cache (an interrupted download?); fetch it "
                 "again with: %s --include '%s/*'", name, found, broken, s.fetch, sub);
  } else if (found && has_lens_files(found)) {
    tl_debug("lens '%s' from the Hugging Face cache: %s", name, found);
    *dir = found;
    found = NULL;
  } else if (tl_is_dir(name)) {
    *dir = tl_strdup(name); /* its loader names the file it lacks */
  } else {
    char *list = cached_list(&s);
    rc = tl_fail("lens '%s' is not a local folder (no %s/config.json + params.pt) and not in the Hugging Face cache "
                 "(searched %s, from %s%s); fetch it with: %s --include '%s/*'", name, name, found ? found : s.repo,
                 s.from, list, s.fetch, sub);
    free(list);
  }
  free(sub), free(found), free(broken);
  tl_lens_space_free(&s);
  return rc;
}

char *tl_lens_hub_name(const char *model) {
  size_t n = strlen(model);
  while (n > 1 && model[n - 1] == '/') n--;
  char *m = tl_sprintf("%.*s", (int)n, model);
  if (m[0] != '/' && m[0] != '.' && !tl_is_dir(m) && tl_hub_valid_id(m)) return m;
  char *b = tl_strdup(tl_basename(m));
  free(m);
  return b;
}
