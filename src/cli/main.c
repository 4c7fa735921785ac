/* tlens: the command-line entry point. It only dispatches to a subcommand. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "tlens/core.h"

typedef struct {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} command;

static const command commands[] = {
    {"train", tl_cmd_train, "train a tuned lens (1..N MPI ranks; checkpoints; resumes)"},
    {"eval", tl_cmd_eval, "evaluate logit and tuned lenses, per layer, in bits per byte"},
    {"compare", tl_cmd_compare, "the paper's table of eval runs: KL, CE, entropy per layer and lens (Markdown, CSV, SVG)"},
    {"export", tl_cmd_export, "write a checkpoint's lens in the hub layout (config.json + params.pt)"},
    {"lenses", tl_cmd_lenses, "list the lens artifacts in the Hugging Face cache (hub ids for -l)"},
    {"info", tl_cmd_info, "describe a Hugging Face model folder"},
    {"hidden", tl_cmd_hidden, "run the model on input_ids and write hidden states + logits"},
    {"tokenize", tl_cmd_tokenize, "encode text to token ids, or decode ids to text"},
    {"synth", tl_cmd_synth, "write a random-weight model folder of any shape"},
    {"generate", tl_cmd_generate, "generate text through the lens at one layer (TunedLens.generate)"},
    {"invert", tl_cmd_invert, "hidden states whose unembedding matches target logits (Unembed.invert)"},
    {"trajectory", tl_cmd_trajectory, "what a lens predicts at every layer and position of a text (JSON, SVG, table)"},
};
#define NCOMMANDS (int)(sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f) {
  fprintf(f, "tlens %s: tuned lenses for transformer language models\n\n", TLENS_VERSION);
  fprintf(f, "usage: tlens <command> [options]   (tlens <command> --help for its options)\n\ncommands:\n");
  for (int i = 0; i < NCOMMANDS; i++) fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
  fprintf(f, "\nexit status: 0 done, 1 error, 2 bad usage, 3 (train) checkpointed and stopped on a signal\n");
}

int main(int argc, char **argv) {
  /* A write past the file size limit (ulimit -f) fails with EFBIG and is reported
   * like any other write error, naming the file; the default would kill the
   * process and leave a temporary file behind. */
  signal(SIGXFSZ, SIG_IGN);
  if (argc < 2) {
    usage(stderr);
    return TL_EXIT_USAGE;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return TL_EXIT_OK;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("tlens %s\n", TLENS_VERSION);
    return TL_EXIT_OK;
  }
  for (int i = 0; i < NCOMMANDS; i++)
    if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
  char names[256] = "";
  for (int i = 0; i < NCOMMANDS; i++) {
    strncat(names, " ", sizeof names - strlen(names) - 1);
    strncat(names, commands[i].name, sizeof names - strlen(names) - 1);
  }
  tl_fail("unknown command '%s' (expected one of:%s)", argv[1], names);
  return tl_cli_report(NULL, TL_EXIT_USAGE);
}
