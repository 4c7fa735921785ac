/* tlens trajectory: what a lens predicts at every layer and position of a text
 * (the reference's PredictionTrajectory), as JSON, SVG heatmaps or a table. */
#include <stdio.h>

#include "cli/commands.h"
#include "tlens/core.h"
#include "tlens/trajectory.h"

static const char *usage =
    "usage: tlens trajectory --model.name DIR|ID [-l LENS] [--logit] (--text S | --input_ids FILE | --prompts FILE)\n"
    "                        [--output DIR] [options]\n\n"
    "Runs the model on the input and looks through the lens at every layer: rows 0..L-1 are the\n"
    "lens at the model's streams, the last row ('output') the model itself. With -l the tuned\n"
    "lens, with --logit the logit lens (both: both; neither: the logit lens). Statistics (--stats,\n"
    "comma-separated; default: every one the inputs allow), as tuned-lens 0.2.0 defines them:\n"
    "  entropy          -sum p log p (nats)\n"
    "  forward_kl       KL(model output || row) (nats)\n"
    "  cross_entropy    -log p(target) (nats)\n"
    "  max_probability  the largest probability (probs)\n"
    "  rank             1 + the target's place among the tokens (--show_ranks: label cells with it)\n"
    "  log_prob_diff    log p(target) - log p(anti-target) (nats; --delta: the change from the row below)\n"
    "  kl               KL(self || other) against --other_text/--other_input_ids/--other_prompts (nats)\n"
    "  js               0.5 KL(self || other) + 0.5 KL(other || self): the reference's \"JS\", which is the\n"
    "                   symmetrised KL, not the Jensen-Shannon divergence (nats)\n"
    "  tv               max over tokens of |p_self - p_other|: the reference's \"TV\", the largest change\n"
    "                   of one token's probability, not half the L1 distance (probs)\n"
    "Targets default to the next input token, EOS last. Token lists (--targets, --anti_targets) are\n"
    "comma-separated ids or token strings (as the tokenizer spells them, e.g. \\u2581play, or text that\n"
    "is one token), or a JSON list of both. --prompts: one prompt per line (a JSON string,\n"
    "{\"text\": ...}, {\"input_ids\": [...]} or a list of ids), all of equal length: statistics are the\n"
    "means over the batch and labels show '*' where the prompts differ.\n"
    "Cells are labelled with their top-1 token (comparisons: the token whose probability changed\n"
    "most); hover entries hold the top-k tokens with probabilities. Tokens are shown as the\n"
    "reference's TokenFormatter does: over 7 characters cut to 6 and '\xe2\x80\xa6', then \xc4\x8a -> \\n and\n"
    "\xc4\xa0 -> _ (--sentencepiece_space: also \xe2\x96\x81 -> _). Layer labels are 0, 1, ..., L-1, output.\n"
    "Memory: the hidden states and a few [chunk, vocab] buffers; the [layers, tokens, vocab]\n"
    "log-probabilities are never held (--save_log_probs writes them, when asked).\n"
    "With --output: DIR/trajectory.json ({lens: {statistic: {name, units, min, max,\n"
    "includes_output, layer_labels, sequence_labels, stats, label_strings, hover_over_entries}}})\n"
    "DIR/<lens>_<statistic>.svg heatmaps (layers up, tokens across, RdBu reversed) and\n"
    "DIR/trajectory.html (every heatmap in one page with a selector and the top-k on hover; all\n"
    "inline, it loads nothing and opens from a file:// URL). Without:\n"
    "the table of top-1 tokens and values on stdout.\n"
    "Ablations (--ablate attn:9,mlp:3-5): the output of those attention and MLP sub-layers is\n"
    "replaced before it joins the residual stream, by zeros (--ablation zero, the default), by its\n"
    "mean over every position of the input (mean), or by the same sub-layer's output on\n"
    "--swap_text/--swap_input_ids at the same positions (swap; same length). The trajectory is then\n"
    "the ablated run's; --compare clean adds kl, js and tv against the clean run.\n"
    "Sub-layer streams (--residual, the reference's residual_component, named as TransformerLens's\n"
    "hooks): row l is the lens at layer l applied to resid_pre (the stream entering block l: the\n"
    "default), resid_mid (resid_pre + attn_out, the stream between attention and MLP), resid_post\n"
    "(the stream leaving block l, = resid_pre of l+1; the last block's before the final norm),\n"
    "attn_out or mlp_out (the sub-layer's output as it joins the stream; ablated, with --ablate).\n"
    "A parallel-residual block (GPT-J, NeoX, Phi, Falcon) has no stream between its attention\n"
    "and MLP, which both read resid_pre (TransformerLens has no resid_mid there), and a post-norm\n"
    "block (OPT-350m) normalises it where no hook sees it: resid_mid is refused for both.\n"
    "Exit status: 0 done, 1 error, 2 bad usage.";

int tl_cmd_trajectory(int argc, char **argv) {
  tl_traj_cfg c;
  tl_traj_cfg_default(&c);
  tl_opt opts[] = {
      {"model.name|model", 0, TL_OPT_STR, &c.model, "model folder, or a hub id in the Hugging Face cache", 0, 0, false},
      {"model.revision|revision", 0, TL_OPT_STR, &c.revision, "with a hub id: branch, tag or commit [main]", 0, 0, false},
      {"tokenizer", 0, TL_OPT_STR, &c.tokenizer, "tokenizer.json [<model>/tokenizer.json]", 0, 0, false},
      {"vocab", 0, TL_OPT_STR, &c.vocab, "JSON list of token strings (index = id) for the labels, instead of the tokenizer's", 0, 0, false},
      {"lens_name|lens", 'l', TL_OPT_STR, &c.lens, "tuned lens folder (config.json + params.pt)", 0, 0, false},
      {"logit", 0, TL_OPT_BOOL, &c.logit, "the logit lens (also, with -l)", 0, 0, false},
      {"text", 0, TL_OPT_STR, &c.text, "the input text", 0, 0, false},
      {"input_ids", 0, TL_OPT_STR, &c.input_ids, "input ids: .safetensors (input_ids [T] or [B,T]) or the JSON list tokenize prints", 0, 0, false},
      {"prompts", 0, TL_OPT_STR, &c.prompts, "a batch: one prompt per line (.jsonl), all of equal length", 0, 0, false},
      {"other_text", 0, TL_OPT_STR, &c.other_text, "the text to compare with (kl, js, tv)", 0, 0, false},
      {"other_input_ids", 0, TL_OPT_STR, &c.other_input_ids, "ids to compare with", 0, 0, false},
      {"other_prompts", 0, TL_OPT_STR, &c.other_prompts, "a batch to compare with", 0, 0, false},
      {"no_special", 0, TL_OPT_BOOL, &c.no_special, "encode text without the post-processor's tokens (e.g. BOS)", 0, 0, false},
      {"targets", 0, TL_OPT_STR, &c.targets, "target tokens, one per position [the next input token, EOS last]", 0, 0, false},
      {"anti_targets", 0, TL_OPT_STR, &c.anti_targets, "anti-target tokens, one per position (log_prob_diff)", 0, 0, false},
      {"eos_id", 0, TL_OPT_INT, &c.eos_id, "EOS id for the default targets [-1: the tokenizer's, else config.json's]", -1, 2147483647.0, false},
      {"stats", 0, TL_OPT_STR, &c.stats, "statistics, comma-separated (see above)", 0, 0, false},
      {"show_ranks", 0, TL_OPT_BOOL, &c.show_ranks, "rank: label each cell with the target's rank", 0, 0, false},
      {"delta", 0, TL_OPT_BOOL, &c.delta, "log_prob_diff: the change from one layer to the next", 0, 0, false},
      {"slice", 0, TL_OPT_STR, &c.slice, "positions to show, Python slice syntax start:stop[:step] (negatives count from the end)", 0, 0, false},
      {"stride", 0, TL_OPT_INT, &c.stride, "show every k-th layer (and always the last row)", 1, 1 << 20, false},
      {"clip", 0, TL_OPT_STR, &c.clip, "clip the values to min:max (also the colour scale)", 0, 0, false},
      {"mask_input", 0, TL_OPT_BOOL, &c.mask_input, "lens rows: never predict a token of the input", 0, 0, false},
      {"min_prob", 0, TL_OPT_FLOAT, &c.min_prob, "label cells only if every cell's top-1 probability exceeds this", 0, 1, false},
      {"min_prob_delta", 0, TL_OPT_FLOAT, &c.min_prob_delta, "comparisons: accepted as the reference does, which then labels every cell anyway", 0, 1, false},
      {"topk", 0, TL_OPT_INT, &c.topk, "tokens per cell in the hover entries", 1, TL_TRAJ_TOPK_MAX, false},
      {"max_entries", 0, TL_OPT_INT, &c.max_entries, "batch members shown in the hover entries", 1, 1 << 20, false},
      {"sentencepiece_space", 0, TL_OPT_BOOL, &c.sp_space, "show SentencePiece's \xe2\x96\x81 as _ too (the reference keeps it)", 0, 0, false},
      {"output|o", 'o', TL_OPT_STR, &c.output, "output folder (trajectory.json, SVG heatmaps)", 0, 0, false},
      {"save_log_probs", 0, TL_OPT_STR, &c.save_log_probs, "also write every row's log-probabilities [B, L+1, positions, V] (safetensors)", 0, 0, false},
      {"title", 0, TL_OPT_STR, &c.title, "heatmap title [<lens> lens: <statistic>]", 0, 0, false},
      {"ablate", 0, TL_OPT_STR, &c.ablate, "sub-layers whose output is ablated, e.g. attn:9,mlp:3-5 (layers from 0)", 0, 0, false},
      {"ablation", 0, TL_OPT_STR, &c.ablation, "how: zero, mean (over the input's positions) or swap [zero]", 0, 0, false},
      {"swap_text", 0, TL_OPT_STR, &c.swap_text, "--ablation swap: the text whose activations replace the input's", 0, 0, false},
      {"swap_input_ids", 0, TL_OPT_STR, &c.swap_input_ids, "--ablation swap: the same as ids", 0, 0, false},
      {"residual", 0, TL_OPT_STR, &c.residual, "the stream looked at: resid_pre, resid_mid, resid_post, attn_out or mlp_out [resid_pre]", 0, 0, false},
      {"compare", 0, TL_OPT_STR, &c.compare, "clean: kl, js and tv of the ablated run against the clean one", 0, 0, false},
      {"chunk", 0, TL_OPT_INT, &c.chunk, "positions per chunk [0: 128]", 0, 1 << 20, false},
      {"threads", 0, TL_OPT_INT, &c.threads, "CPU threads (0 = OMP_NUM_THREADS or all cores)", 0, 4096, false},
  };
  int nopts = (int)(sizeof opts / sizeof opts[0]);
  int status = tl_cli_parse("trajectory", opts, nopts, argc, argv, usage, true, NULL, NULL);
  if (status < 0) status = tl_trajectory_run(&c) == 0 ? TL_EXIT_OK : tl_cli_error("trajectory");
  tl_traj_cfg_free(&c);
  return status;
}
