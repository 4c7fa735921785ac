/* A model's config.json, for every family: the text goes through
 * tl_model_parse_config, the function tl_model_read_config and tl_model_load call on
 * the file's bytes. An accepted config is then laid out as the loader lays it out
 * (blob offsets, then the list of tensors the weights must hold), the size arithmetic
 * that a config with absurd sizes could overflow. */
#include "fuzz.h"
#include "model/model_internal.h"

/* The tensor list grows with the layer count (about a dozen entries of 230 bytes per
 * layer, up to the parser's cap of TL_CFG_MANY layers: some 280 MB); past this many
 * layers it is skipped, so that one input does not take seconds. */
#define FUZZ_MAX_LIST_LAYERS 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_quiet();
  tl_model_config cfg;
  const tl_family *fam = NULL;
  if (tl_model_parse_config((const char *)data, size, "config.json", &cfg, &fam) == 0) {
    tl_layer_layout ll;
    tl_global_layout gl;
    tl_layouts(&cfg, &ll, &gl);
    if (cfg.n_layers <= FUZZ_MAX_LIST_LAYERS) {
      tl_tspec *specs = NULL;
      int n = 0;
      if (tl_model_specs(fam, &cfg, &specs, &n) == 0) free(specs);
    }
  }
  return 0;
}
