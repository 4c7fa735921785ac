/* One entry point per subcommand, each in src/cli/cmd_<name>.c. argv[0] is the
 * subcommand's name. Return the process exit status.
 *
 * Only src/cli/ prints errors and chooses exit statuses; the library returns 0 / -1
 * with the message recorded (tl_fail, tl_errmsg). The statuses, the same for every
 * command (README, each --help): */
#ifndef TLENS_CLI_COMMANDS_H
#define TLENS_CLI_COMMANDS_H

#include <stdbool.h>

#include "cli/args.h"
#include "tlens/run.h"

enum {
  TL_EXIT_OK = 0,
  TL_EXIT_ERROR = 1,     /* runtime error: a bad file, I/O, a failed collective */
  TL_EXIT_USAGE = 2,     /* unknown flag, missing required flag, bad value */
  TL_EXIT_PREEMPTED = 3, /* train: checkpointed on a signal, not finished; run again to resume */
};

int tl_cmd_info(int argc, char **argv);
int tl_cmd_hidden(int argc, char **argv);
int tl_cmd_synth(int argc, char **argv);
int tl_cmd_tokenize(int argc, char **argv);
int tl_cmd_train(int argc, char **argv);
int tl_cmd_eval(int argc, char **argv);
int tl_cmd_export(int argc, char **argv);
int tl_cmd_trajectory(int argc, char **argv);
int tl_cmd_generate(int argc, char **argv);
int tl_cmd_compare(int argc, char **argv);
int tl_cmd_invert(int argc, char **argv);
int tl_cmd_lenses(int argc, char **argv);

/* ---- the reporter (src/cli/report.c) ---- */
/* Prints "tlens <cmd>: error: <tl_errmsg()>" (rank r > 0 of a multi-rank run:
 * "tlens[r] <cmd>: error: ..."; cmd NULL: "tlens: error: ...") and returns status. */
int tl_cli_report(const char *cmd, int status);
/* tl_cli_report(cmd, TL_EXIT_ERROR). */
int tl_cli_error(const char *cmd);
/* Parses a command's flags (tl_args_parse). Returns -1 to go on, else the status
 * to exit with at once: TL_EXIT_OK after --help, TL_EXIT_USAGE after an error
 * (reported; the parsed strings are freed then). */
int tl_cli_parse(const char *cmd, tl_opt *opts, int nopts, int argc, char **argv, const char *usage,
                 bool allow_config, char ***positional, int *npositional);

/* ---- the reference's Model / Data / Distributed flags (src/cli/run_options.c) ---- */
/* Writes the option rows of a tl_run_cfg (and --log_level into *log_level) into
 * out[0..cap) and returns how many. */
int tl_cli_run_options(tl_opt *out, int cap, tl_run_cfg *c, char **log_level);
/* --log_level NAME (NULL: unchanged). */
int tl_cli_apply_log_level(const char *level);

/* A command that runs on MPI ranks: tl_run_init, body(cfg, run), tl_run_close, with
 * the error reported on every rank. body returns 0 or -1 and may set *status
 * (e.g. TL_EXIT_PREEMPTED); the result is the process exit status. */
typedef int (*tl_cli_body)(void *cfg, tl_run *run, int *status);
int tl_cli_run_ranks(const char *cmd, int argc, char **argv, tl_cli_body body, void *cfg);

#endif
