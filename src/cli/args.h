/* Command-line and JSON-config options shared by every subcommand.
 *
 * A command declares a table of tl_opt; tl_args_parse fills the destinations from
 * argv ("--name value", "--name=value", "-x value"; bools as "--flag", "--noflag",
 * "--flag True", "--flag false", "--flag 1",
 * "--flag=true|false"), after first loading "--config FILE" (a JSON object whose
 * keys are the option names without dashes) when the table allows it; flags given on
 * the command line override the config. Unknown flags, missing values, malformed or
 * out-of-range numbers are one-line errors. "--help"/"-h" prints the usage. */
#ifndef TLENS_CLI_ARGS_H
#define TLENS_CLI_ARGS_H

#include <stdbool.h>

/* TL_OPT_STRS: one or more values ("--data.name a.jsonl b.jsonl", every argument up to
 * the next one starting with '-'; a JSON list in --config), stored joined by '\n'.
 * TL_OPT_LIST: the same, and the flag may be repeated ("-l a -l b"): each
 * occurrence on the command line adds to the list (the first replaces the
 * config's), where STRS keeps the last. */
typedef enum { TL_OPT_STR, TL_OPT_INT, TL_OPT_FLOAT, TL_OPT_BOOL, TL_OPT_STRS, TL_OPT_LIST } tl_opt_type;

typedef struct {
  const char *names; /* "model.name|model" : long names, '|'-separated; first is canonical */
  char short_name;   /* e.g. 'o' for -o, or 0 */
  tl_opt_type type;
  void *dst;         /* char ** (NULL or a malloc'd string: it is replaced and freed), long *, double *, bool * */
  const char *help;
  double lo, hi;     /* inclusive range for INT/FLOAT when lo < hi */
  bool set;          /* out: given on the command line or in the config */
} tl_opt;

enum { TL_ARGS_OK = 0, TL_ARGS_ERROR = -1, TL_ARGS_HELP = 1 };

/* Returns TL_ARGS_OK, TL_ARGS_HELP (usage printed to stdout; exit 0) or TL_ARGS_ERROR
 * (message recorded with tl_fail). Positional arguments are an error unless
 * positional != NULL, in which case they are collected there (array of argv pointers). */
int tl_args_parse(tl_opt *opts, int nopts, int argc, char **argv, const char *usage,
                  bool allow_config, char ***positional, int *npositional);
void tl_args_print_usage(const tl_opt *opts, int nopts, const char *usage);
/* Frees the malloc'd strings the parse stored. */
void tl_args_free(tl_opt *opts, int nopts);
/* The canonical name of an option, for messages. */
const char *tl_opt_name(const tl_opt *o, char *buf, int cap);

#endif
