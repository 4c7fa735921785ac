/* A lens folder's config.json, through tl_lens_config_parse (what tl_lens_config_read
 * calls on the file's bytes); an accepted config is written back as JSON, as export does. */
#include "fuzz.h"
#include "tlens/export.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_quiet();
  tl_lens_config c;
  memset(&c, 0, sizeof c);
  if (tl_lens_config_parse((const char *)data, size, "config.json", &c) == 0) {
    free(tl_lens_config_json(&c));
    tl_lens_config_free(&c);
  }
  return 0;
}
