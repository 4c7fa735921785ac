/* tlens compare: the paper's comparison table of evaluation runs (tlens/compare.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "tlens/compare.h"
#include "tlens/core.h"

static const char *usage =
    "usage: tlens compare RUN... [--output DIR]\n\n"
    "Compares the output folders of tlens eval (of one model or several): for every lens of\n"
    "every run, KL(model || lens), cross-entropy and entropy at each layer and their mean over\n"
    "layers, in the runs' unit (bits per byte, or nats per token where bytes were unknown), as\n"
    "the tuned-lens paper tabulates them, and the model's own cross-entropy and entropy.\n"
    "Runs of different depths are aligned by relative depth: with K the fewest layers of any\n"
    "run, column k stands at depth k/K and a run of L layers shows its layer round(k*L/K).\n"
    "RUN is a folder, or LABEL=FOLDER to name it in the table (default: the folder's name).\n"
    "Prints the table as Markdown; with --output also writes DIR/comparison.md,\n"
    "DIR/comparison.csv (full precision) and DIR/comparison.svg (the chart, with bands of\n"
    "2 standard errors over batches when the runs hold batches.jsonl).\n"
    "Exit status: 0 done, 1 error, 2 bad usage.";

static int write_text(const char *dir, const char *name, const char *text) {
  char *path = tl_path_join(dir, name);
  int rc = tl_write_file_atomic(path, text, strlen(text));
  free(path);
  return rc;
}

int tl_cmd_compare(int argc, char **argv) {
  char *output = NULL;
  tl_opt opts[] = {{"output|o", 'o', TL_OPT_STR, &output, "folder for comparison.md, .csv and .svg", 0, 0, false}};
  char **pos = NULL;
  int npos = 0;
  int status = tl_cli_parse("compare", opts, 1, argc, argv, usage, false, &pos, &npos);
  if (status >= 0) {
    free(pos);
    return status;
  }
  if (npos < 1) {
    tl_fail("no run given (see --help)");
    free(pos);
    tl_args_free(opts, 1);
    return tl_cli_report("compare", TL_EXIT_USAGE);
  }
  tl_compare_run *runs = tl_calloc((size_t)npos, sizeof *runs);
  int n = 0, rc = 0;
  for (; n < npos && rc == 0; n++) rc = tl_compare_load(&runs[n], pos[n]);
  if (rc != 0) n--; /* the failed one freed itself */
  char *md = NULL, *csv = NULL;
  if (rc == 0) rc = tl_compare_markdown(runs, n, &md);
  if (rc == 0) rc = tl_compare_csv(runs, n, &csv);
  if (rc == 0 && output) {
    char *svg = tl_path_join(output, "comparison.svg");
    rc = tl_mkdirs(output);
    if (rc == 0) rc = write_text(output, "comparison.md", md);
    if (rc == 0) rc = write_text(output, "comparison.csv", csv);
    if (rc == 0) rc = tl_compare_svg(runs, n, svg);
    free(svg);
  }
  if (rc == 0) {
    fputs(md, stdout);
    if (output) printf("\nwritten to %s: comparison.md, comparison.csv, comparison.svg\n", output);
  }
  status = rc == 0 ? TL_EXIT_OK : tl_cli_error("compare");
  free(md);
  free(csv);
  for (int k = 0; k < n; k++) tl_compare_run_free(&runs[k]);
  free(runs);
  free(pos);
  tl_args_free(opts, 1);
  return status;
}
