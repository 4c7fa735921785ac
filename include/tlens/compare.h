/* Comparing evaluation runs (tlens compare): the tuned-lens paper's table of KL,
 * cross-entropy and entropy per layer of every lens of every run, with their
 * means, from the output folders of `tlens eval` (of one model or several).
 *
 * A run is read from its aggregate_metrics.json (tlens/eval.h): every top-level
 * object holding "kl", "ce" and "entropy" per "layer_<i>" is a lens (in the file's
 * order; "logit" and "tuned" from tlens eval), "baseline" the model's own CE and
 * entropy, "units" their unit. batches.jsonl, when there, gives each mean its
 * standard error (the chart's bands).
 *
 * Runs of the same depth are compared layer by layer. Runs of different depths are
 * aligned by relative depth: stream i of a run of L layers lies at depth i / L (0 =
 * the embeddings), and the table's K columns (K = the fewest layers of any run)
 * stand at depths k / K, where a run of L layers shows its layer round(k L / K).
 * A row's mean is over all of that run's layers. */
#ifndef TLENS_COMPARE_H
#define TLENS_COMPARE_H

#include <stdio.h>

enum { TL_CMP_KL = 0, TL_CMP_CE = 1, TL_CMP_ENT = 2, TL_CMP_NMET = 3 };

typedef struct {
  char *label;  /* the run's name in the table: LABEL of LABEL=DIR, else the folder's name */
  char *dir;
  char *units;  /* "bits_per_byte", "nats_per_token", or NULL when the file does not say */
  int layers;
  int nlens;
  char **lens;  /* [nlens] the lens names of the file: "logit", "tuned", ... */
  double *mean; /* [nlens][TL_CMP_NMET][layers] */
  double *se;   /* the same shape: standard errors over batches; NaN without batches.jsonl */
  double base_ce, base_entropy; /* the model's own, NaN when absent */
} tl_compare_run;

/* Reads one run: "DIR", or "LABEL=DIR" when that is not itself a folder. */
int tl_compare_load(tl_compare_run *r, const char *arg);
void tl_compare_run_free(tl_compare_run *r);

/* The layer of run r shown in column k of K (see above). */
int tl_compare_layer(int layers, int k, int K);

/* The tables as Markdown into *out (malloc'd): one per metric, then the model's
 * own CE and entropy. -1 when the runs state different units. */
int tl_compare_markdown(const tl_compare_run *runs, int n, char **out);
/* The same table as CSV into *out (malloc'd): run,lens,metric,units,layers, one
 * column per position, mean; every value at full precision. */
int tl_compare_csv(const tl_compare_run *runs, int n, char **out);
/* The chart: one panel per metric against relative depth (or layer), a line per
 * run and lens with its 2-standard-error band. */
int tl_compare_svg(const tl_compare_run *runs, int n, const char *path);

#endif
