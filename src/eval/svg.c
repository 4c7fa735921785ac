/* The per-layer chart of KL and cross-entropy with one line per lens, drawn by
 * the chart module (tlens/plot.h): this is its older entry point, kept for
 * callers of tlens/eval.h. */
#include <math.h>
#include <stdlib.h>

#include "tlens/core.h"
#include "tlens/eval.h"
#include "tlens/plot.h"

int tl_svg_layers(const char *path, const char *title, int n, const tl_svg_series *kl, int nkl,
                  const tl_svg_series *ce, int nce, double baseline_ce, const char *unit) {
  if (n < 1 || (nkl < 1 && nce < 1)) return tl_fail("%s: nothing to plot", path);
  /* one curve per lens: the KL series with the CE series of the same index */
  int nc = nkl > nce ? nkl : nce;
  tl_plot_curve *cv = tl_calloc((size_t)nc, sizeof *cv);
  for (int k = 0; k < nc; k++) {
    const tl_svg_series *any = k < nkl ? &kl[k] : &ce[k];
    cv[k] = (tl_plot_curve){.name = any->name, .color = any->color, .n = n};
    cv[k].y[0] = k < nkl ? kl[k].v : NULL;
    cv[k].y[1] = k < nce ? ce[k].v : NULL;
  }
  char *kl_label = tl_sprintf("KL(model || lens) (%s)", unit), *ce_label = tl_sprintf("cross-entropy (%s)", unit);
  tl_plot_panels c = {.title = title, .x_label = "layer", .x_layers = true, .bars = true, .npanels = 2,
                      .panel = {kl_label, ce_label}, .baseline = {NAN, baseline_ce},
                      .baseline_label = {NULL, "model output"}, .curves = cv, .ncurves = nc};
  int rc = tl_plot_panels_write(path, &c);
  free(kl_label);
  free(ce_label);
  free(cv);
  return rc;
}
