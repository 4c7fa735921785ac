/* The frozen "Unembed" of a model: final norm followed by the output embedding,
 * as the lens sees it. Filled by the model module (tl_model_unembed), used by the
 * lens, eval and export modules. All arrays are fp32 and owned by the model. */
#ifndef TLENS_UNEMBED_H
#define TLENS_UNEMBED_H

#include <stdint.h>

typedef enum { TL_NORM_LAYERNORM = 0, TL_NORM_RMSNORM = 1 } tl_norm_kind;

typedef struct {
  int d_model;
  int vocab;
  tl_norm_kind norm;
  float eps;
  int norm_add_one;    /* Gemma-style (1 + weight); 0 for every family we support now */
  const float *norm_w; /* [d] */
  const float *norm_b; /* [d] or NULL (RMSNorm) */
  const float *W_U;    /* [vocab, d] row-major: logits = W_U @ norm(h) */
  const float *b_U;    /* [vocab] or NULL */
} tl_unembed;

#endif
