/* tlens tokenize: encode text to token ids (printed as a JSON list), or decode a
 * JSON list of ids back to text, with a model folder's tokenizer.json. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "tlens/core.h"
#include "tlens/tokenizer.h"

static const char *USAGE =
    "usage: tlens tokenize (--model DIR | --tokenizer FILE) [--text S | --input FILE] [--no_special] [--decode]\n"
    "Encodes the text (--text, or the whole of --input; '-' reads stdin) and prints the ids as a JSON list.\n"
    "With --decode the text is a JSON list of ids and the decoded text is printed, followed by a newline.";

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
  bool no_special = false, decode = false;
  tl_opt opts[] = {
      {"model", 'm', TL_OPT_STR, &model, "model folder holding tokenizer.json", 0, 0, 0},
      {"tokenizer", 't', TL_OPT_STR, &tokenizer, "a tokenizer.json file", 0, 0, 0},
      {"text", 0, TL_OPT_STR, &text, "the text to encode (or the JSON ids to decode)", 0, 0, 0},
      {"input", 'i', TL_OPT_STR, &input, "file holding the text (or the JSON ids); '-' for stdin", 0, 0, 0},
      {"no_special", 0, TL_OPT_BOOL, &no_special, "do not add the post-processor's special tokens (e.g. BOS)", 0, 0, 0},
      {"decode", 'd', TL_OPT_BOOL, &decode, "decode a JSON list of ids instead of encoding", 0, 0, 0},
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
