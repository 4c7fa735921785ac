/* The option parser shared by every subcommand (see args.h). */
#include "cli/args.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/commands.h"
#include "tlens/core.h"

const char *tl_opt_name(const tl_opt *o, char *buf, int cap) {
  const char *bar = strchr(o->names, '|');
  int n = bar ? (int)(bar - o->names) : (int)strlen(o->names);
  snprintf(buf, (size_t)cap, "--%.*s", n, o->names);
  return buf;
}

/* Does `name` (without dashes, up to len chars) match one of o->names? */
static int matches(const tl_opt *o, const char *name, size_t len) {
  const char *s = o->names;
  while (*s) {
    const char *bar = strchr(s, '|');
    size_t n = bar ? (size_t)(bar - s) : strlen(s);
    if (n == len && !strncmp(s, name, len)) return 1;
    if (!bar) break;
    s = bar + 1;
  }
  return 0;
}

static tl_opt *find(tl_opt *opts, int n, const char *name, size_t len) {
  for (int i = 0; i < n; i++)
    if (matches(&opts[i], name, len)) return &opts[i];
  return NULL;
}

/* The reference's spellings (Python's True/False as users paste them, any case). */
static int parse_bool(const char *v, bool *out) {
  if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes")) *out = true;
  else if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no")) *out = false;
  else return -1;
  return 0;
}

/* Stores a textual value into the option; `where` names the source for errors. */
static int store(tl_opt *o, const char *v, const char *where) {
  char nm[96];
  tl_opt_name(o, nm, sizeof nm);
  switch (o->type) {
  case TL_OPT_STR:
  case TL_OPT_STRS:
  case TL_OPT_LIST:
    free(*(char **)o->dst);
    *(char **)o->dst = tl_strdup(v);
    break;
  case TL_OPT_INT:
  case TL_OPT_FLOAT: {
    /* integers are parsed as integers (no rounding of 2^53+1), then range-checked as numbers */
    bool is_int = o->type == TL_OPT_INT;
    long xi = 0;
    double x = 0;
    if (is_int ? tl_parse_long(v, &xi) != 0 : tl_parse_double(v, &x) != 0)
      return tl_fail("%s%s: expected %s, got '%s'", where, nm, is_int ? "an integer" : "a number", v);
    if (is_int) x = (double)xi;
    if (o->lo < o->hi && (x < o->lo || x > o->hi)) {
      if (is_int) return tl_fail("%s%s: %ld is out of range [%.0f, %.0f]", where, nm, xi, o->lo, o->hi);
      return tl_fail("%s%s: %g is out of range [%g, %g]", where, nm, x, o->lo, o->hi);
    }
    if (is_int) *(long *)o->dst = xi;
    else *(double *)o->dst = x;
    break;
  }
  case TL_OPT_BOOL:
    if (parse_bool(v, (bool *)o->dst) != 0) return tl_fail("%s%s: expected true or false, got '%s'", where, nm, v);
    break;
  }
  o->set = true;
  return 0;
}

static int load_config(tl_opt *opts, int n, const char *path) {
  char *text = NULL;
  size_t len = 0;
  TL_TRY(tl_read_file(path, &text, &len));
  cJSON *root = cJSON_ParseWithLength(text, len);
  free(text);
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return tl_fail("%s: not a JSON object", path);
  }
  char where[600];
  /* the key that set each option: a second key for the same option (the same name
   * twice, or two of its aliases) is an error, since JSON readers disagree on which wins */
  const char **seen = tl_calloc((size_t)n + 1, sizeof *seen);
  for (cJSON *e = root->child; e; e = e->next) {
    const char *key = e->string;
    if (key[0] == '_' || !strncmp(key, "//", 2)) continue; /* "_comment" keys document the file */
    tl_opt *o = find(opts, n, key, strlen(key));
    snprintf(where, sizeof where, "%s: key '%s': ", path, key);
    if (!o || seen[o - opts]) {
      if (!o) tl_fail("%s: unknown key '%s'", path, key);
      else tl_fail("%s: key '%s' sets the same option as key '%s' before it", path, key, seen[o - opts]);
      free(seen);
      cJSON_Delete(root);
      return -1;
    }
    seen[o - opts] = key;
    char buf[64];
    const char *v = NULL;
    tl_buf list = {0};
    if ((o->type == TL_OPT_STRS || o->type == TL_OPT_LIST) && cJSON_IsArray(e)) { /* "data.name": ["a.jsonl", "b.jsonl"] */
      for (cJSON *x = e->child; x; x = x->next) {
        if (!cJSON_IsString(x)) {
          tl_fail("%s: key '%s': expected a list of strings", path, key);
          tl_buf_free(&list);
          free(seen);
          cJSON_Delete(root);
          return -1;
        }
        tl_buf_printf(&list, "%s%s", x == e->child ? "" : "\n", x->valuestring);
      }
      tl_buf_append(&list, "", 1);
      int rc = store(o, (const char *)list.data, where);
      tl_buf_free(&list);
      if (rc != 0) {
        free(seen);
        cJSON_Delete(root);
        return rc;
      }
      continue;
    }
    if (cJSON_IsString(e)) v = e->valuestring;
    else if (cJSON_IsBool(e)) v = cJSON_IsTrue(e) ? "true" : "false";
    else if (cJSON_IsNumber(e)) {
      /* an integer option takes a whole number a long holds: tested before the
       * conversion, which is undefined for Inf, NaN and anything beyond 2^63 */
      double d = e->valuedouble;
      if (o->type == TL_OPT_INT && !(d >= -9.2e18 && d <= 9.2e18 && d == (double)(long)d)) {
        tl_fail("%s: key '%s': expected an integer", path, key);
        free(seen);
        cJSON_Delete(root);
        return -1;
      }
      if (o->type == TL_OPT_INT) snprintf(buf, sizeof buf, "%.0f", d);
      else snprintf(buf, sizeof buf, "%.17g", d);
      v = buf;
    } else if (cJSON_IsNull(e)) continue;
    if (!v) {
      tl_fail("%s: key '%s': expected a string, number or boolean", path, key);
      free(seen);
      cJSON_Delete(root);
      return -1;
    }
    int rc = store(o, v, where);
    if (rc != 0) {
      free(seen);
      cJSON_Delete(root);
      return rc;
    }
  }
  free(seen);
  cJSON_Delete(root);
  return 0;
}

void tl_args_print_usage(const tl_opt *opts, int nopts, const char *usage) {
  printf("%s\n\noptions:\n", usage);
  for (int i = 0; i < nopts; i++) {
    const tl_opt *o = &opts[i];
    char names[256] = "";
    size_t pos = 0;
    if (o->short_name) pos += (size_t)snprintf(names + pos, sizeof names - pos, "-%c, ", o->short_name);
    const char *s = o->names;
    while (*s && pos < sizeof names) {
      const char *bar = strchr(s, '|');
      int n = bar ? (int)(bar - s) : (int)strlen(s);
      pos += (size_t)snprintf(names + pos, sizeof names - pos, "%s--%.*s", s == o->names ? "" : ", ", n, s);
      if (!bar) break;
      s = bar + 1;
    }
    const char *arg = o->type == TL_OPT_STRS || o->type == TL_OPT_LIST ? " S [S ...]" : o->type == TL_OPT_STR ? " S" : o->type == TL_OPT_INT ? " N" : o->type == TL_OPT_FLOAT ? " X" : "";
    char def[64] = "";
    switch (o->type) {
    case TL_OPT_STR:
    case TL_OPT_STRS:
    case TL_OPT_LIST:
      if (*(char **)o->dst) snprintf(def, sizeof def, " [%s]", *(char **)o->dst);
      break;
    case TL_OPT_INT: snprintf(def, sizeof def, " [%ld]", *(long *)o->dst); break;
    case TL_OPT_FLOAT: snprintf(def, sizeof def, " [%g]", *(double *)o->dst); break;
    case TL_OPT_BOOL: snprintf(def, sizeof def, " [%s]", *(bool *)o->dst ? "on" : "off"); break;
    }
    printf("  %s%s\n      %s%s\n", names, arg, o->help, def);
  }
  printf("  -h, --help\n      show this help\n");
}

static int parse_flags(tl_opt *opts, int nopts, int argc, char **argv, bool allow_config, char ***positional,
                       int *npositional, bool *on_cli);

int tl_args_parse(tl_opt *opts, int nopts, int argc, char **argv, const char *usage, bool allow_config,
                  char ***positional, int *npositional) {
  if (positional) {
    *positional = tl_calloc((size_t)argc + 1, sizeof(char *));
    *npositional = 0;
  }
  /* --help wins over everything, and the config file loads before the flags that override it */
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--")) break;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      tl_args_print_usage(opts, nopts, usage);
      return TL_ARGS_HELP;
    }
  }
  if (allow_config) {
    for (int i = 1; i < argc; i++) {
      const char *path = NULL;
      if (!strcmp(argv[i], "--config")) {
        if (i + 1 >= argc) return tl_fail("--config: expected a file name");
        path = argv[i + 1];
      } else if (!strncmp(argv[i], "--config=", 9)) {
        path = argv[i] + 9;
      }
      if (path) TL_TRY(load_config(opts, nopts, path));
    }
  }
  bool *on_cli = tl_calloc((size_t)nopts + 1, sizeof(bool)); /* given on the command line so far */
  int rc = parse_flags(opts, nopts, argc, argv, allow_config, positional, npositional, on_cli);
  free(on_cli);
  return rc;
}

/* The command line after the config: each flag into its option. */
static int parse_flags(tl_opt *opts, int nopts, int argc, char **argv, bool allow_config, char ***positional,
                       int *npositional, bool *on_cli) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (allow_config && !strcmp(a, "--config")) {
      i++;
      continue;
    }
    if (allow_config && !strncmp(a, "--config=", 9)) continue;
    tl_opt *o = NULL;
    const char *value = NULL;
    int negated = 0;
    bool eq_value = false;
    if (a[0] == '-' && a[1] == '-' && a[2]) {
      const char *name = a + 2;
      const char *eq = strchr(name, '=');
      size_t len = eq ? (size_t)(eq - name) : strlen(name);
      o = find(opts, nopts, name, len);
      if (!o && len > 2 && !strncmp(name, "no", 2)) { /* --noflag, as the reference CLI spells it */
        o = find(opts, nopts, name + 2, len - 2);
        if (o && o->type != TL_OPT_BOOL) o = NULL;
        negated = o != NULL;
      }
      if (!o) return tl_fail("unknown option '%.*s' (see --help)", (int)(len + 2), a);
      if (eq) value = eq + 1;
      eq_value = eq != NULL;
      if (negated && eq) return tl_fail("option '%s' takes no value", a);
    } else if (a[0] == '-' && a[1] && !a[2]) {
      for (int k = 0; k < nopts; k++)
        if (opts[k].short_name == a[1]) o = &opts[k];
      if (!o) return tl_fail("unknown option '%s' (see --help)", a);
    } else {
      if (!positional) return tl_fail("unexpected argument '%s' (see --help)", a);
      (*positional)[(*npositional)++] = argv[i];
      continue;
    }
    if (o->type == TL_OPT_BOOL && !value) {
      bool b;
      /* "--fsdp True", "--dataloader_shuffle false": a following boolean word is the value */
      if (!negated && i + 1 < argc && parse_bool(argv[i + 1], &b) == 0) {
        *(bool *)o->dst = b;
        i++;
      } else {
        *(bool *)o->dst = !negated;
      }
      o->set = true;
      continue;
    }
    if (!value) {
      if (i + 1 >= argc) {
        char nm[96];
        return tl_fail("%s: expected a value", tl_opt_name(o, nm, sizeof nm));
      }
      value = argv[++i];
    }
    bool is_list = o->type == TL_OPT_LIST;
    if ((o->type == TL_OPT_STRS || is_list) && (!eq_value || is_list)) {
      /* the values that follow, up to the next option: joined by newlines; a
       * repeated list flag adds them to what its earlier occurrences gave */
      tl_buf list = {0};
      bool again = is_list && on_cli[o - opts];
      if (again) tl_buf_printf(&list, "%s\n", *(char **)o->dst);
      tl_buf_printf(&list, "%s", value);
      while (!eq_value && i + 1 < argc && argv[i + 1][0] != '-') tl_buf_printf(&list, "\n%s", argv[++i]);
      tl_buf_append(&list, "", 1);
      int rc = store(o, (const char *)list.data, "");
      tl_buf_free(&list);
      TL_TRY(rc);
      on_cli[o - opts] = true;
      continue;
    }
    TL_TRY(store(o, value, ""));
  }
  return TL_ARGS_OK;
}

void tl_args_free(tl_opt *opts, int nopts) {
  for (int i = 0; i < nopts; i++)
    if (opts[i].type == TL_OPT_STR || opts[i].type == TL_OPT_STRS || opts[i].type == TL_OPT_LIST) {
      free(*(char **)opts[i].dst);
      *(char **)opts[i].dst = NULL;
    }
}
