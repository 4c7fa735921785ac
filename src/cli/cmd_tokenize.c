/* tlens tokenize: encode text to token ids (printed as a JSON list), or decode a
 * JSON list of ids back to text, with a model folder's tokenizer.json; with
 * --tokens, each token's string and byte offsets too, as JSON (the field names of
 * HF tokenizers' Encoding: ids, tokens, offsets) or a table. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "tlens/core.h"
#include "tlens/tokenizer.h"

static const char *USAGE =
    "usage: tlens tokenize (--model DIR | --tokenizer FILE) [--text S | --input FILE] [--no_special]\n"
    "                      [--decode | --tokens [--format json|table]]\n"
    "Encodes the text (--text, or the whole of --input; '-' reads stdin) and prints the ids as a JSON list.\n"
    "With --decode the text is a JSON list of ids and the decoded text is printed, followed by a newline.\n"
    "With --tokens each token's string and its byte offsets [start, end) in the UTF-8 text are printed\n"
    "too: as JSON {\"ids\": [...], \"tokens\": [...], \"offsets\": [[start, end], ...]} (what\n"
    "`tlens hidden --input_ids FILE` reads), or as a table (the default on a terminal).";

static int read_stdin(char **data, size_t *len) {
  tl_buf b = {0};
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) tl_buf_append(&b, chunk, n);
  if (ferror(stdin)) { tl_buf_free(&b); return tl_fail("stdin: read error"); }
  tl_buf_append(&b, "", 1);
  *data = (char *)b.data;
  *len = b.len - 1;
  return 0;
}

/* s as a JSON string literal (quotes, escapes; UTF-8 passes) */
static void json_string(tl_buf *b, const char *s, size_t n) {
  cJSON *j = cJSON_CreateString("");
  char *tmp = tl_malloc(n + 1);
  memcpy(tmp, s, n);
  tmp[n] = 0;
  cJSON_SetValuestring(j, tmp);
  char *text = cJSON_PrintUnformatted(j);
  tl_buf_printf(b, "%s", text);
  free(text);
  free(tmp);
  cJSON_Delete(j);
}

/* --tokens: ids, token strings and offsets as JSON, or a table of them with the
 * text each token came from. */
static int print_tokens(const tl_tokenizer *tok, const char *data, size_t len, bool add_special, bool table) {
  int32_t *ids = NULL;
  tl_token_span *sp = NULL;
  char **tokens = NULL;
  size_t n = 0;
  TL_TRY(tl_tokenizer_encode_offsets(tok, data, len, add_special, &ids, &sp, &tokens, &n));
  tl_buf b = {0};
  if (table) {
    tl_buf_printf(&b, "%6s %8s %7s %7s  %-16s %s\n", "index", "id", "start", "end", "token", "text");
    for (size_t i = 0; i < n; i++) {
      tl_buf_printf(&b, "%6zu %8d %7zu %7zu  ", i, ids[i], sp[i].start, sp[i].end);
      size_t w0 = b.len, chars = 0;
      json_string(&b, tokens[i], strlen(tokens[i]));
      for (size_t k = w0; k < b.len; k++) chars += (b.data[k] & 0xC0) != 0x80; /* UTF-8 characters */
      for (; chars < 16; chars++) tl_buf_append(&b, " ", 1);
      tl_buf_append(&b, " ", 1);
      json_string(&b, data + sp[i].start, sp[i].end - sp[i].start);
      tl_buf_append(&b, "\n", 1);
    }
  } else {
    tl_buf_printf(&b, "{\"ids\": [");
    for (size_t i = 0; i < n; i++) tl_buf_printf(&b, i ? ", %d" : "%d", ids[i]);
    tl_buf_printf(&b, "], \"tokens\": [");
    for (size_t i = 0; i < n; i++) {
      if (i) tl_buf_printf(&b, ", ");
      json_string(&b, tokens[i], strlen(tokens[i]));
    }
    tl_buf_printf(&b, "], \"offsets\": [");
    for (size_t i = 0; i < n; i++) tl_buf_printf(&b, i ? ", [%zu, %zu]" : "[%zu, %zu]", sp[i].start, sp[i].end);
    tl_buf_printf(&b, "]}\n");
  }
  fwrite(b.data, 1, b.len, stdout);
  tl_buf_free(&b);
  free(ids);
  free(sp);
  tl_tokenizer_tokens_free(tokens, n);
  return 0;
}

/* Parses "[1, 2, 3]" into ids; `what` names the source in errors. */
static int parse_ids(const char *what, const char *s, size_t len, int32_t **ids, size_t *n) {
  cJSON *j = cJSON_ParseWithLength(s, len);
  if (!cJSON_IsArray(j)) {
    cJSON_Delete(j);
    return tl_fail("%s: expected a JSON list of token ids, like [15496, 995]", what);
  }
  *n = (size_t)cJSON_GetArraySize(j);
  *ids = tl_malloc((*n + 1) * sizeof(int32_t));
  size_t i = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, j) {
    double d = cJSON_IsNumber(e) ? e->valuedouble : -1;
    if (!(d >= 0 && d <= 2147483647.0) || d != (double)(int32_t)d) {
      cJSON_Delete(j);
      free(*ids);
      *ids = NULL;
      return tl_fail("%s: element %zu: expected a non-negative integer token id", what, i);
    }
    (*ids)[i++] = (int32_t)d;
  }
  cJSON_Delete(j);
  return 0;
}

int tl_cmd_tokenize(int argc, char **argv) {
  char *model = NULL, *tokenizer = NULL, *text = NULL, *input = NULL;
  bool no_special = false, decode = false, tokens = false;
  char *format = NULL;
  tl_opt opts[] = {
      {"model", 'm', TL_OPT_STR, &model, "model folder holding tokenizer.json", 0, 0, 0},
      {"tokenizer", 't', TL_OPT_STR, &tokenizer, "a tokenizer.json file", 0, 0, 0},
      {"text", 0, TL_OPT_STR, &text, "the text to encode (or the JSON ids to decode)", 0, 0, 0},
      {"input", 'i', TL_OPT_STR, &input, "file holding the text (or the JSON ids); '-' for stdin", 0, 0, 0},
      {"no_special", 0, TL_OPT_BOOL, &no_special, "do not add the post-processor's special tokens (e.g. BOS)", 0, 0, 0},
      {"decode", 'd', TL_OPT_BOOL, &decode, "decode a JSON list of ids instead of encoding", 0, 0, 0},
      {"tokens", 0, TL_OPT_BOOL, &tokens, "also each token's string and byte offsets (JSON, or a table on a terminal)", 0, 0, 0},
      {"format", 0, TL_OPT_STR, &format, "with --tokens: json or table [table on a terminal, else json]", 0, 0, 0},
  };
  int nopts = (int)(sizeof opts / sizeof opts[0]);
  int status = tl_cli_parse("tokenize", opts, nopts, argc, argv, USAGE, false, NULL, NULL);
  if (status >= 0) return status;
  status = TL_EXIT_USAGE;
  char *path = NULL, *data = NULL, *out_text = NULL;
  size_t len = 0;
  tl_tokenizer *tok = NULL;
  int32_t *ids = NULL;
  size_t n = 0;
  if ((model != NULL) == (tokenizer != NULL)) {
    tl_fail("give exactly one of --model DIR or --tokenizer FILE");
    goto fail;
  }
  if ((text != NULL) == (input != NULL)) {
    tl_fail("give exactly one of --text S or --input FILE");
    goto fail;
  }
  if (format && strcmp(format, "json") && strcmp(format, "table")) {
    tl_fail("--format: expected json or table, got '%s'", format);
    goto fail;
  }
  if (format && !tokens) {
    tl_fail("--format goes with --tokens");
    goto fail;
  }
  if (tokens && decode) {
    tl_fail("--tokens and --decode exclude each other");
    goto fail;
  }
  status = TL_EXIT_ERROR;
  path = model ? tl_path_join(model, "tokenizer.json") : tl_strdup(tokenizer);
  if (tl_tokenizer_load(&tok, path)) goto fail;
  const char *what = text ? "--text" : strcmp(input, "-") == 0 ? "stdin" : input;
  if (text) {
    data = tl_strdup(text);
    len = strlen(text);
  } else if (strcmp(input, "-") == 0 ? read_stdin(&data, &len) : tl_read_file(input, &data, &len)) {
    goto fail;
  }
  if (decode) {
    if (parse_ids(what, data, len, &ids, &n) || tl_tokenizer_decode(tok, ids, n, &out_text)) {
      goto fail;
    }
    fputs(out_text, stdout);
    fputc('\n', stdout);
  } else if (tokens) {
    bool table = format ? !strcmp(format, "table") : isatty(1);
    if (print_tokens(tok, data, len, !no_special, table)) {
      tl_fail_context("%s", what);
      goto fail;
    }
  } else {
    if (tl_tokenizer_encode(tok, data, len, !no_special, &ids, &n)) {
      tl_fail_context("%s", what);
      goto fail;
    }
    tl_buf b = {0};
    tl_buf_append(&b, "[", 1);
    for (size_t i = 0; i < n; i++) tl_buf_printf(&b, i ? ", %d" : "%d", ids[i]);
    tl_buf_append(&b, "]\n", 2);
    fwrite(b.data, 1, b.len, stdout);
    tl_buf_free(&b);
  }
  if (fflush(stdout) != 0 || ferror(stdout)) {
    tl_fail("stdout: write error");
    goto fail;
  }
  status = TL_EXIT_OK;
  goto done;
fail:
  tl_cli_report("tokenize", status);
done:
  free(ids);
  free(out_text);
  free(data);
  free(path);
  tl_tokenizer_free(tok);
  tl_args_free(opts, nopts);
  return status;
}
