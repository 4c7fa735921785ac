/* tl_model_hold_precision: a model held in bf16 or fp16 computes what the fp32
 * forward computes on weights rounded to that dtype beforehand by PyTorch.
 *
 * usage: model_precision MODEL ROUNDED_BF16 ROUNDED_F16 INPUT [BF16_CHECKPOINT]
 *   MODEL         an fp32 model folder
 *   ROUNDED_*     the same weights rounded by torch (.to(dtype)) and stored as F32
 *                 (tests/model/make_bin_folders.py)
 *   INPUT         a safetensors file with input_ids [B, T]
 *   BF16_CHECKPOINT  the weights saved in bf16 (auto must hold them in bf16)
 * Run by tests/model/test_model_bin.sh. */
#include <stdlib.h>
#include <string.h>

#include "tl_test.h"
#include "tlens/core.h"
#include "tlens/model.h"
#include "tlens/safetensors.h"

typedef struct {
  int B, T;
  int32_t *ids;
} input;

/* Loads dir holding its layers as `hold`, runs the forward; *hidden and *logits malloc'd. */
static int run(const char *dir, int hold, const input *in, tl_dtype expect_held, float **hidden, float **logits,
               size_t *nh, size_t *nl) {
  tl_model *m = NULL;
  tl_model_hold_precision(hold);
  if (tl_model_load(&m, dir)) {
    fprintf(stderr, "%s: %s\n", dir, tl_errmsg());
    return -1;
  }
  const tl_model_config *c = tl_model_cfg(m);
  CHECKF(tl_model_held_dtype(m) == expect_held, "%s: held %s, expected %s", dir, tl_dtype_name(tl_model_held_dtype(m)),
         tl_dtype_name(expect_held));
  /* held in 16 bits: no fp32 copy of any layer is kept */
  for (int l = 0; l < c->n_layers; l++) CHECK((tl_model_layer_blob(m, l) == NULL) == (expect_held != TL_F32));
  *nh = (size_t)(c->n_layers + 1) * in->B * in->T * c->d_model;
  *nl = (size_t)in->B * in->T * c->vocab;
  *hidden = malloc(*nh * sizeof(float));
  *logits = malloc(*nl * sizeof(float));
  int rc = tl_model_forward(m, in->ids, in->B, in->T, *hidden, *logits);
  if (rc) fprintf(stderr, "%s: %s\n", dir, tl_errmsg());
  tl_model_free(m);
  return rc;
}

/* dir held as `hold` against ref computed in fp32: within tol; returns the hidden states' error. */
static double compare(const char *what, const char *dir, int hold, tl_dtype held, const char *ref, const input *in,
                      double tol) {
  double eh = -1;
  float *h = NULL, *l = NULL, *rh = NULL, *rl = NULL;
  size_t nh, nl, rnh, rnl;
  if (run(dir, hold, in, held, &h, &l, &nh, &nl) == 0 && run(ref, TL_F32, in, TL_F32, &rh, &rl, &rnh, &rnl) == 0) {
    CHECK(nh == rnh && nl == rnl);
    eh = tl_test_maxerr(h, rh, (long)nh);
    double el = tl_test_maxerr(l, rl, (long)nl);
    printf("%-34s hidden max |diff| %.3g, logits %.3g\n", what, eh, el);
    CHECKF(eh <= tol && el <= tol, "%s: hidden %.3g logits %.3g (tolerance %.3g)", what, eh, el, tol);
  } else {
    CHECKF(0, "%s: a forward failed", what);
  }
  free(h), free(l), free(rh), free(rl);
  return eh;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s MODEL ROUNDED_BF16 ROUNDED_F16 INPUT [BF16_CHECKPOINT]\n", argv[0]);
    return 2;
  }
  const char *model = argv[1], *bf16 = argv[2], *f16 = argv[3];
  tl_safetensors st;
  int64_t *ids64 = NULL;
  int64_t shape[2] = {-1, -1};
  if (tl_st_open(&st, argv[4]) || tl_st_get_i64(&st, "input_ids", 2, shape, &ids64)) {
    fprintf(stderr, "%s\n", tl_errmsg());
    return 1;
  }
  const tl_st_tensor *t = tl_st_find(&st, "input_ids");
  input in = {(int)t->shape[0], (int)t->shape[1], NULL};
  in.ids = malloc((size_t)in.B * in.T * sizeof *in.ids);
  for (int i = 0; i < in.B * in.T; i++) in.ids[i] = (int32_t)ids64[i];

  /* the computation is the fp32 one on the rounded values: equal to well within 1e-6 */
  compare("held bf16 vs torch-rounded fp32", model, TL_BF16, TL_BF16, bf16, &in, 1e-6);
  compare("held fp16 vs torch-rounded fp32", model, TL_F16, TL_F16, f16, &in, 1e-6);
  compare("auto on fp32 = fp32", model, TL_MODEL_HOLD_AUTO, TL_F32, model, &in, 0);
  /* and the rounding is visible: the fp32 model is not what the bf16 one computes */
  CHECKF(compare("fp32 vs torch-rounded (must differ)", model, TL_F32, TL_F32, bf16, &in, 1e9) > 1e-4,
         "rounding the weights to bf16 changed nothing: the comparison above proves nothing");
  if (argc > 5) {
    compare("auto on a bf16 checkpoint", argv[5], TL_MODEL_HOLD_AUTO, TL_BF16, bf16, &in, 0);
    compare("float32 on a bf16 checkpoint", argv[5], TL_F32, TL_F32, bf16, &in, 0);
  }

  int d = 0;
  CHECK(tl_model_parse_precision("bfloat16", &d) == 0 && d == TL_BF16);
  CHECK(tl_model_parse_precision("float16", &d) == 0 && d == TL_F16);
  CHECK(tl_model_parse_precision("float32", &d) == 0 && d == TL_F32);
  CHECK(tl_model_parse_precision("auto", &d) == 0 && d == TL_MODEL_HOLD_AUTO);
  CHECK(tl_model_parse_precision("fp8", &d) != 0 && strstr(tl_errmsg(), "--precision") && strstr(tl_errmsg(), "fp8"));

  tl_model_hold_precision(TL_F32);
  free(in.ids);
  free(ids64);
  tl_st_close(&st);
  return tl_test_finish("model_precision");
}
