/* Token strings for display: the vocabulary (from a tokenizer or a JSON list) and
 * the reference's TokenFormatter rules. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis_internal.h"
#include "tlens/core.h"

int tl_traj_vocab_from_tokenizer(const tl_tokenizer *tok, int V, tl_traj_vocab *voc) {
  voc->n = V;
  voc->tok = tl_calloc((size_t)V, sizeof(char *));
  for (int i = 0; i < V; i++) {
    const char *s = tl_tokenizer_id_to_token(tok, i);
    voc->tok[i] = s ? tl_strdup(s) : NULL;
  }
  voc->size = tl_tokenizer_vocab_size(tok);
  return 0;
}

int tl_traj_vocab_load(const char *path, tl_traj_vocab *voc) {
  char *text = NULL;
  size_t len = 0;
  memset(voc, 0, sizeof *voc);
  TL_TRY(tl_read_file(path, &text, &len));
  cJSON *j = cJSON_ParseWithLength(text, len);
  free(text);
  if (!cJSON_IsArray(j)) {
    cJSON_Delete(j);
    return tl_fail("%s: expected a JSON list of token strings (index = token id)", path);
  }
  voc->n = voc->size = cJSON_GetArraySize(j);
  voc->tok = tl_calloc((size_t)voc->n + 1, sizeof(char *));
  int i = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, j) {
    if (!cJSON_IsString(e) && !cJSON_IsNull(e)) {
      cJSON_Delete(j);
      tl_traj_vocab_free(voc);
      return tl_fail("%s: element %d: expected a token string or null", path, i);
    }
    voc->tok[i++] = cJSON_IsString(e) ? tl_strdup(e->valuestring) : NULL;
  }
  cJSON_Delete(j);
  return 0;
}

void tl_traj_vocab_free(tl_traj_vocab *voc) {
  for (int i = 0; voc->tok && i < voc->n; i++) free(voc->tok[i]);
  free(voc->tok);
  memset(voc, 0, sizeof *voc);
}

const char *tl_traj_vocab_get(const tl_traj_vocab *voc, int32_t id) {
  return id >= 0 && id < voc->n ? voc->tok[id] : NULL;
}

/* replaces every `from` in b's text (NUL-terminated) by `to` */
static void replace_all(tl_buf *b, const char *from, const char *to) {
  tl_buf out = {0};
  const char *s = (const char *)b->data;
  const size_t fl = strlen(from), tlen = strlen(to);
  for (const char *hit; (hit = strstr(s, from)) != NULL; s = hit + fl) {
    tl_buf_append(&out, s, (size_t)(hit - s));
    tl_buf_append(&out, to, tlen);
  }
  tl_buf_append(&out, s, strlen(s) + 1);
  tl_buf_free(b);
  *b = out;
}

char *tl_tokfmt(const char *tok, bool sp_space) {
  if (!tok) return tl_strdup("<unk>"); /* an id the tokenizer has no string for */
  /* longer than 7 characters (code points, as Python counts): the first 6 and an ellipsis */
  size_t n = 0, cut = 0;
  for (size_t i = 0; tok[i]; i++)
    if (((unsigned char)tok[i] & 0xc0) != 0x80) { /* not a continuation byte: a new code point */
      if (n == TL_TOKFMT_MAX_LEN - 1) cut = i;
      n++;
    }
  tl_buf b = {0};
  if (n > TL_TOKFMT_MAX_LEN) {
    tl_buf_append(&b, tok, cut);
    tl_buf_append(&b, "\xe2\x80\xa6", 4); /* U+2026 and the NUL */
  } else {
    tl_buf_append(&b, tok, strlen(tok) + 1);
  }
  replace_all(&b, "\xc4\x8a", "\\n"); /* Ċ: byte-level BPE's newline */
  replace_all(&b, "\xc4\xa0", "_");   /* Ġ: byte-level BPE's space */
  if (sp_space) replace_all(&b, "\xe2\x96\x81", "_"); /* ▁: SentencePiece's space */
  return (char *)b.data;
}

char *tl_traj_token_label(const tl_traj_vocab *voc, int32_t id, bool sp_space) {
  return tl_tokfmt(tl_traj_vocab_get(voc, id), sp_space);
}
