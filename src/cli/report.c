/* The one place where commands print an error and pick their exit status. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/commands.h"
#include "tlens/core.h"

int tl_cli_report(const char *cmd, int status) {
  char who[64];
  int rank = tl_log_rank();
  if (rank > 0) snprintf(who, sizeof who, "tlens[%d]", rank);
  else snprintf(who, sizeof who, "tlens");
  fprintf(stderr, "%s%s%s: error: %s\n", who, cmd ? " " : "", cmd ? cmd : "", tl_errmsg());
  return status;
}

int tl_cli_error(const char *cmd) { return tl_cli_report(cmd, TL_EXIT_ERROR); }

int tl_cli_parse(const char *cmd, tl_opt *opts, int nopts, int argc, char **argv, const char *usage,
                 bool allow_config, char ***positional, int *npositional) {
  int rc = tl_args_parse(opts, nopts, argc, argv, usage, allow_config, positional, npositional);
  if (rc == TL_ARGS_OK) return -1;
  tl_args_free(opts, nopts);
  if (positional) {
    free(*positional);
    *positional = NULL;
  }
  return rc == TL_ARGS_HELP ? TL_EXIT_OK : tl_cli_report(cmd, TL_EXIT_USAGE);
}

int tl_cli_run_ranks(const char *cmd, int argc, char **argv, tl_cli_body body, void *cfg) {
  tl_run run;
  if (tl_run_init(&run, &argc, &argv) != 0) return tl_cli_error(cmd);
  int status = TL_EXIT_OK;
  if (tl_run_check_launch(&run) != 0) {
    status = tl_cli_report(cmd, TL_EXIT_USAGE);
    tl_run_close(&run);
    return status;
  }
  /* every rank knows the reason of a failure (the steps agree on errors), and
   * each rank's log shows it: a job's per-rank output never ends silently */
  if (body(cfg, &run, &status) != 0) status = tl_cli_error(cmd);
  tl_run_close(&run);
  return status;
}
