/* tlens invert: hidden states whose unembedding matches target logits (the
 * reference's Unembed.invert). */
#include <stdio.h>

#include "cli/commands.h"
#include "tlens/core.h"
#include "tlens/invert.h"

static const char *usage =
    "usage: tlens invert --model.name DIR|ID --logits FILE.safetensors [--output FILE.safetensors] [options]\n\n"
    "Finds hidden states h minimising KL(p || softmax(W_U norm(h) + b_U)) for target logits z\n"
    "(p = softmax(z), times --weight when given; a tensor [..., V]: --logits_name, else\n"
    "'target_logits', else the file's only tensor), plus --prior_weight times the mean of\n"
    "-log N(norm(h); 0, I). Starts from h = 0 as tuned-lens 0.2.0's Unembed.invert does, with its\n"
    "L-BFGS (strong Wolfe line search, tolerance --tol) or plain gradient descent (--sgd), until\n"
    "--max_iter evaluations, a gradient norm below --tol or a loss below --tol. Prints kl, loss,\n"
    "grad_norm and nfev, and writes preimage [..., d] (norm(h*), after the final norm), kl, loss\n"
    "and grad_norm (metadata nfev) to --output. All values belong to the returned preimage.\n"
    "Exit status: 0 done, 1 error, 2 bad usage.";

int tl_cmd_invert(int argc, char **argv) {
  tl_invert_cfg c;
  tl_invert_cfg_default(&c);
  tl_opt opts[] = {
      {"model.name|model", 0, TL_OPT_STR, &c.model, "model folder, or a hub id in the Hugging Face cache", 0, 0, false},
      {"model.revision|revision", 0, TL_OPT_STR, &c.revision, "with a hub id: branch, tag or commit [main]", 0, 0, false},
      {"logits", 0, TL_OPT_STR, &c.logits, "safetensors file of target logits [..., V]", 0, 0, false},
      {"logits_name", 0, TL_OPT_STR, &c.logits_name, "the tensor's name in it [target_logits]", 0, 0, false},
      {"weight", 0, TL_OPT_STR, &c.weight, "safetensors file of per-token weights [..., V] (tensor 'weight')", 0, 0, false},
      {"sgd", 0, TL_OPT_BOOL, &c.sgd, "gradient descent instead of L-BFGS", 0, 0, false},
      {"max_iter", 0, TL_OPT_INT, &c.max_iter, "function evaluations at most", 1, 1 << 24, false},
      {"tol", 0, TL_OPT_FLOAT, &c.tol, "stop below this gradient norm or loss (and L-BFGS's tolerance_change)", 0, 1e6, false},
      {"step_size", 0, TL_OPT_FLOAT, &c.step_size, "L-BFGS learning rate / SGD step", 1e-12, 1e12, false},
      {"prior_weight", 0, TL_OPT_FLOAT, &c.prior_weight, "weight of a standard normal prior on norm(h)", 0, 1e12, false},
      {"output|o", 'o', TL_OPT_STR, &c.output, "safetensors file to write", 0, 0, false},
      {"threads", 0, TL_OPT_INT, &c.threads, "CPU threads (0 = OMP_NUM_THREADS or all cores)", 0, 4096, false},
  };
  int nopts = (int)(sizeof opts / sizeof opts[0]);
  int status = tl_cli_parse("invert", opts, nopts, argc, argv, usage, true, NULL, NULL);
  if (status < 0) status = tl_invert_run(&c) == 0 ? TL_EXIT_OK : tl_cli_error("invert");
  tl_invert_cfg_free(&c);
  return status;
}
