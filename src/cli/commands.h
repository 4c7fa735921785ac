/* One entry point per subcommand, each in src/cli/cmd_<name>.c. argv[0] is the
 * subcommand's name. Return the process exit status. */
#ifndef TLENS_CLI_COMMANDS_H
#define TLENS_CLI_COMMANDS_H

int tl_cmd_info(int argc, char **argv);
int tl_cmd_hidden(int argc, char **argv);
int tl_cmd_synth(int argc, char **argv);
int tl_cmd_tokenize(int argc, char **argv);
int tl_cmd_train(int argc, char **argv);
int tl_cmd_eval(int argc, char **argv);
int tl_cmd_export(int argc, char **argv);

/* Shared by commands: print "tlens <cmd>: error: <tl_errmsg()>" and return 1 (or 2 for usage). */
int tl_cli_error(const char *cmd);

#endif
