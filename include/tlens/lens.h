/* The tuned lens: one affine translator per residual stream, followed by the
 * model's frozen final norm and unembedding (tlens/unembed.h).
 *
 *   transform(h, i) = h + W_i h + b_i            (W_i [d,d] stored [out,in], b_i [d])
 *   lens(h, i)      = W_U norm(transform(h, i)) (+ b_U)
 *   logit lens      = W_U norm(h)                (a NULL lens everywhere below)
 *
 * Streams are the model's hidden_states[0..L-1] (index 0 = embeddings); the final
 * distribution is the model's own: from its logits, or from its last hidden state
 * through W_U (tl_lens_cfg.final_hidden, tl_lens_eval_all).
 *
 * Parameters are ONE flat fp32 array in PyTorch state-dict order
 * ("0.weight", "0.bias", "1.weight", ...): translator i starts at
 * i * (d*d + d), weight first. Gradients and optimizer state use the same layout,
 * so data-parallel all-reduce, ZeRO reduce-scatter/all-gather and checkpoints are
 * plain operations on contiguous float ranges.
 *
 * Training is fused and chunked: for each chunk of tokens (tl_lens_cfg.chunk,
 * default TL_LENS_CHUNK) the model's final distribution at those positions is
 * made once, then for each stream: translator -> norm -> logits -> log-softmax
 * -> loss -> dlogits -> back through W_U, the norm and the translator,
 * accumulating dW/db. No [tokens, V] tensor is ever materialised. */
#ifndef TLENS_LENS_H
#define TLENS_LENS_H

#include <stdint.h>

#include "tlens/optim.h"
#include "tlens/unembed.h"

/* Tokens per chunk of the fused step. The step holds two [chunk, V] fp32
 * buffers: the lens logits of one stream and the model's probabilities at the
 * same positions (made once per chunk, shared by every stream); 2 x 26 MB at
 * V = 50304. 128 rows is enough for the two big GEMMs per chunk (M = 128,
 * N = V, K = d and M = 128, N = d, K = V) to run at the kernels' full rate on
 * two threads (each block of W_U streamed from memory serves 128 rows;
 * measured: 64 rows lose ~10%, 256 were no faster within the noise), and
 * keeps both buffers in a server's L3, which the memory-bound row passes
 * (softmax, loss, gradient) feel more than the GEMMs do. Each row (V floats,
 * 200 KB) stays in L2 across those passes. */
#define TL_LENS_CHUNK 128

typedef struct {
  int n_layers;     /* L: number of translators = streams 0..L-1 */
  int d_model;
  int bias_only;    /* weights are frozen: no gradient, no optimizer update */
  int64_t n_params; /* L * (d*d + d) */
  float *params;    /* [n_params], owned */
} tl_lens;

/* Zero-initialised lens (equals the logit lens). Validates n_layers in [1, 100000] and
 * d_model in [1, 1000000]. */
int tl_lens_init(tl_lens *lens, int n_layers, int d_model);
void tl_lens_free(tl_lens *lens);
/* Offsets into the flat array (and the gradient/state arrays of the same layout). */
int64_t tl_lens_weight_off(const tl_lens *lens, int i);
int64_t tl_lens_bias_off(const tl_lens *lens, int i);
/* Number of trainable segments [begin, end) of the flat array and segment k:
 * one per translator (weight+bias contiguous), or only the biases when bias_only. */
int tl_lens_n_segments(const tl_lens *lens);
void tl_lens_segment(const tl_lens *lens, int k, int64_t *begin, int64_t *end);

/* One optimizer step on the lens: tl_optim_update on every trainable segment (its
 * part inside the optimizer's shard [o->off, o->off + o->n)), then
 * tl_optim_finish_step. grad is the full flat gradient (only the shard is read). */
void tl_lens_optim_step(tl_lens *lens, tl_optim *o, const float *grad, double lr);

/* Checks that the lens and the unembedding agree (d_model) and that the unembedding
 * is complete. */
int tl_lens_check(const tl_lens *lens, const tl_unembed *u);

/* The unembedding prepared for the lens GEMMs (tl_lens_prepare, below). */
typedef struct tl_lens_ws tl_lens_ws;

/* out[n,d] = transform(h[n,d], i) = h + W_i h + b_i (lens non-NULL). */
void tl_lens_transform(const tl_lens *lens, int i, const float *h, int n, float *out);
/* logits[n,V] = lens(h[n,d], i); lens NULL = logit lens: the rows of the
 * evaluations, a chunk at a time in the chunk buffers of ws. For layer transfer,
 * tests, trajectories and generation. ws: an fp32 tl_lens_prepare of u, or NULL
 * for the process-wide one (checked against W_U's content per call). A ws that
 * does not match u is an error (-1): logits are then not written. */
int tl_lens_logits(const tl_lens *lens, const tl_unembed *u, int i, const float *h, int n, float *logits,
                   tl_lens_ws *ws);

typedef enum { TL_LOSS_KL = 0, TL_LOSS_CE = 1 } tl_loss_kind;
#define TL_SHIFT_DEFAULT (-1000000) /* kl: 0, ce: 1 */

/* Precision of the two large products with W_U in the training step (the
 * logits and the gradient back through W_U; everything else stays fp32).
 *   FP32 (default): agrees with PyTorch's fp32 reference to ~1e-6.
 *   BF16: W_U, the normalised rows and dL/dlogits are rounded to bf16 (8-bit
 *     significand: each value off by up to 2^-8 = 0.4%) and multiplied with fp32
 *     accumulation, as PyTorch's bf16 autocast does on GPUs. A logit is off by
 *     ~1e-3 of the scale of its dot product (sum of |terms|; at most 0.8%);
 *     losses and gradients agree with fp32 to about 1e-2 relative. About twice
 *     as fast, on CPUs with AVX-512 BF16 only: elsewhere it runs in fp32 after
 *     one warning. */
typedef enum { TL_LENS_GEMM_FP32 = 0, TL_LENS_GEMM_BF16 = 1 } tl_lens_gemm_precision;

/* The unembedding prepared for the lens step: W_U repacked once (it is frozen)
 * into the layout of the matrix kernels chosen for this CPU, plus the step's
 * chunk buffers (about chunk x V floats), kept between calls. Holds a pointer to
 * u->W_U, which must outlive it and stay unchanged. One call at a time per ws. */

typedef struct {
  tl_loss_kind loss; /* [kl] */
  int token_shift;   /* TL_SHIFT_DEFAULT or |shift| < T: labels drop the first shift
                        positions, predictions the last (negative: the other way round) */
  int chunk;         /* tokens per chunk; 0 = TL_LENS_CHUNK */
  tl_lens_gemm_precision gemm_precision; /* [fp32] */
  tl_lens_ws *ws; /* optional: from tl_lens_prepare(u, gemm_precision); NULL = prepared on
                     first use and cached for the process (see tl_lens_cache_free) */
  const float *final_hidden; /* optional, kl training: the model's last hidden state [B,T,d]
                     (tl_model_forward's stream L, after the final norm). The final
                     distribution is then computed chunk by chunk as W_U h + b_U in
                     fp32, and model_logits must be NULL: no [B,T,V] tensor at all. */
  /* optional: called by tl_lens_train_micro once stream i's gradient is
     complete (streams finish in order during the last chunk), e.g. to start
     averaging it over ranks while the other streams compute. A nonzero return
     stops the step with an error. */
  int (*stream_done)(void *ctx, int stream);
  void *stream_done_ctx;
} tl_lens_cfg;

/* Prepares u for the given precision (packs W_U: about 100 MB at pythia-70m's
 * 50304 x 512, fp32 or bf16). Free with tl_lens_ws_free. */
int tl_lens_prepare(const tl_unembed *u, tl_lens_gemm_precision prec, tl_lens_ws **ws);
void tl_lens_ws_free(tl_lens_ws *ws);
/* The precision ws really runs at (bf16 falls back to fp32 without AVX-512 BF16)
 * and a name for its kernels: "avx512-fp32", "avx512-bf16", "amx-bf16" or "openblas". */
tl_lens_gemm_precision tl_lens_ws_precision(const tl_lens_ws *ws);
const char *tl_lens_ws_kernels(const tl_lens_ws *ws);
/* Frees what the functions below cached when called without a prepared ws (the
 * packed W_U of the last model they saw, checked by content on every call, and
 * its chunk buffers). Calls without a ws are serialised by a lock. */
void tl_lens_cache_free(void);

tl_lens_cfg tl_lens_cfg_default(void);
/* The effective shift of cfg (resolving TL_SHIFT_DEFAULT). */
int tl_lens_shift(const tl_lens_cfg *cfg);

/* One training micro-batch, all streams.
 *   hidden: stream i's states at hidden + i*B*T*d, each [B,T,d] (the layout of
 *           tl_model_forward's hidden output; streams 0..L-1 are used)
 *   model_logits: [B,T,V], the model's final logits (kl; NULL for ce, or with
 *           cfg->final_hidden)
 *   ids: [B,T] input ids (ce; may be NULL for kl), validated against V
 *   scale: multiplies every stream's loss before differentiation (1 / grad-acc steps)
 *   grad: flat gradient, ACCUMULATED into (+=); weights untouched when bias_only
 *   losses: [L] (may be NULL): each stream's unscaled loss, mean over its positions
 * loss_i = mean over kept positions of KL(model || lens_i) or of -log q_i(next token). */
int tl_lens_train_micro(const tl_lens *lens, const tl_unembed *u, const tl_lens_cfg *cfg, const float *hidden,
                        const float *model_logits, const int32_t *ids, int B, int T, float scale, float *grad,
                        float *losses);
/* The checks tl_lens_train_micro makes before it computes anything: when they
 * pass, the step itself does not fail (so ranks that agree on this result can
 * start collectives from stream_done without one rank missing). */
int tl_lens_train_check(const tl_lens *lens, const tl_unembed *u, const tl_lens_cfg *cfg,
                        const float *model_logits, const int32_t *ids, int B, int T, float scale);

/* Evaluation of one (stream, translator) pair, no gradients; every evaluation
 * below computes each metric with the same row code. Sums, not means:
 *   kl_sum, entropy_sum: over all B*T positions (n_all = B*T)
 *   ce_sum: -log q(ids[t + shift]) over the n_ce = B*(T-|shift|) shifted positions. */
typedef struct {
  double kl_sum, ce_sum, entropy_sum;
  int64_t n_all, n_ce;
} tl_lens_eval_out;

/* h: [B,T,d] one stream; translator: index of the translator applied to it
 * (= the stream for normal eval; any for layer transfer); lens NULL = logit lens.
 * model_logits [B,T,V] (NULL: kl_sum = 0), ids [B,T] (NULL: ce_sum = 0).
 * prob_sum [V] (may be NULL): += the lens probabilities of every position
 * (logit_stats). chunk 0 = TL_LENS_CHUNK. ws: as for tl_lens_logits. */
int tl_lens_eval(const tl_lens *lens, int translator, const tl_unembed *u, const float *h,
                 const float *model_logits, const int32_t *ids, int B, int T, int token_shift, int chunk,
                 tl_lens_eval_out *out, float *prob_sum, tl_lens_ws *ws);
/* Every stream at once, and the baseline, without the model's logits:
 *   hidden: n_streams + 1 streams [B,T,d] laid out as tl_model_forward writes
 *           them; the last is the model's final hidden state (after its final
 *           norm), from which its distribution is made a chunk at a time (fp32).
 *   out[n_streams]: as tl_lens_eval for (stream i, translator i) each;
 *   final_out (may be NULL): as tl_lens_eval_final;
 *   prob_sum [n_streams][V], final_prob_sum [V] (each may be NULL): += the
 *           probabilities of every position.
 * lens NULL = logit lens; otherwise lens->n_layers must equal n_streams.
 * Holds two [chunk, V] buffers, never a [B,T,V] one. */
int tl_lens_eval_all(const tl_lens *lens, int n_streams, const tl_unembed *u, const float *hidden,
                     const int32_t *ids, int B, int T, int token_shift, int chunk, tl_lens_eval_out *out,
                     tl_lens_eval_out *final_out, float *prob_sum, float *final_prob_sum, tl_lens_ws *ws);
/* Baseline: ce and entropy of the model's own distribution (kl_sum = 0). */
int tl_lens_eval_final(const float *model_logits, int vocab, const int32_t *ids, int B, int T, int token_shift,
                       tl_lens_eval_out *out, float *prob_sum);

#endif
