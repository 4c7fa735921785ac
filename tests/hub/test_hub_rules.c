/* The naming rules of the Hugging Face cache, as huggingface_hub 0.23 states them
 * (worked by hand from its sources, not from our output):
 * - validate_repo_id: ^(\b[\w\-.]+\b/)?\b[\w\-.]+\b$, no "--" or "..", at most 96
 *   characters;
 * - repo_folder_name: "<type>s" and the id's parts joined by "--";
 * - constants.py: HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else HF_HOME/hub, else
 *   $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub, each through
 *   os.path.expanduser;
 * and the hub space's layout for lens folders (lens/gpt2, lens/EleutherAI/pythia-160m). */
#include <stdlib.h>
#include <string.h>

#include "tl_test.h"
#include "tlens/core.h"
#include "tlens/export.h"
#include "tlens/hub.h"

static void expect_str(char *got, const char *want, const char *what) {
  CHECKF(got && !strcmp(got, want), "%s: got '%s', want '%s'", what, got ? got : "(null)", want);
  free(got);
}

int main(void) {
  static const struct {
    const char *id;
    bool ok;
  } ids[] = {
      {"gpt2", true},          {"EleutherAI/pythia-160m", true}, {"meta-llama/Llama-2-7b-hf", true},
      {"org/na_me.v1", true},  {"a", true},                      {"", false},
      {"a/b/c", false},        {"/a", false},                    {"a/", false},
      {"-a", false},           {"a-", false},                    {".a", false},
      {"a.", false},           {"org/.b", false},                {"org/b-", false},
      {"a--b", false},         {"a..b", false},                  {"a b", false},
      {"a\\b", false},         {"~a", false},                    {"a/b c", false},
  };
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
    CHECKF(tl_hub_valid_id(ids[i].id) == ids[i].ok, "'%s' should be %s", ids[i].id, ids[i].ok ? "valid" : "invalid");
  char long_id[98];
  memset(long_id, 'x', sizeof long_id);
  long_id[96] = 0;
  CHECK(tl_hub_valid_id(long_id)); /* 96 characters */
  long_id[96] = 'x', long_id[97] = 0;
  CHECK(!tl_hub_valid_id(long_id)); /* 97 */

  CHECK(tl_hub_valid_type("model") && tl_hub_valid_type("dataset") && tl_hub_valid_type("space"));
  CHECK(!tl_hub_valid_type("spaces") && !tl_hub_valid_type("Model") && !tl_hub_valid_type(""));
  expect_str(tl_hub_repo_dir("/c", "model", "EleutherAI/pythia-160m"), "/c/models--EleutherAI--pythia-160m", "model dir");
  expect_str(tl_hub_repo_dir("/c", "model", "gpt2"), "/c/models--gpt2", "model dir, no org");
  expect_str(tl_hub_repo_dir("/c", "space", "AlignmentResearch/tuned-lens"), "/c/spaces--AlignmentResearch--tuned-lens",
             "space dir");
  expect_str(tl_hub_repo_dir("/c", "dataset", "a/b"), "/c/datasets--a--b", "dataset dir");

  CHECK(tl_hub_safe_revision("main") && tl_hub_safe_revision("refs/pr/1") && tl_hub_safe_revision("v1.0"));
  CHECK(!tl_hub_safe_revision("") && !tl_hub_safe_revision("/etc") && !tl_hub_safe_revision("../x") &&
        !tl_hub_safe_revision("a/../../b"));

  /* the cache folder, in order of precedence */
  const char *from = NULL;
  setenv("HOME", "/home/u", 1);
  setenv("HF_HUB_CACHE", "/a", 1);
  setenv("HUGGINGFACE_HUB_CACHE", "/b", 1);
  setenv("HF_HOME", "/h", 1);
  setenv("XDG_CACHE_HOME", "/x", 1);
  expect_str(tl_hub_cache_dir(&from), "/a", "HF_HUB_CACHE");
  CHECK(!strcmp(from, "HF_HUB_CACHE"));
  setenv("HF_HUB_CACHE", "", 1); /* set but empty: the next one */
  expect_str(tl_hub_cache_dir(&from), "/b", "HUGGINGFACE_HUB_CACHE");
  unsetenv("HUGGINGFACE_HUB_CACHE");
  expect_str(tl_hub_cache_dir(&from), "/h/hub", "HF_HOME");
  CHECK(!strcmp(from, "HF_HOME"));
  unsetenv("HF_HOME");
  expect_str(tl_hub_cache_dir(&from), "/x/huggingface/hub", "XDG_CACHE_HOME");
  unsetenv("XDG_CACHE_HOME");
  unsetenv("HF_HUB_CACHE");
  expect_str(tl_hub_cache_dir(&from), "/home/u/.cache/huggingface/hub", "HOME");
  CHECK(!strcmp(from, "HOME"));
  setenv("HF_HOME", "~/hf", 1); /* os.path.expanduser */
  expect_str(tl_hub_cache_dir(&from), "/home/u/hf/hub", "HF_HOME=~/hf");
  setenv("HF_HUB_CACHE", "~", 1);
  expect_str(tl_hub_cache_dir(&from), "/home/u", "HF_HUB_CACHE=~");
  setenv("HF_HUB_CACHE", "~other/c", 1); /* another user's home: left as it is */
  expect_str(tl_hub_cache_dir(&from), "~other/c", "HF_HUB_CACHE=~other/c");

  /* where a lens goes in a hub layout: an id as it is, a folder by its last part */
  expect_str(tl_lens_hub_name("EleutherAI/pythia-160m"), "EleutherAI/pythia-160m", "hub name of an id");
  expect_str(tl_lens_hub_name("gpt2"), "gpt2", "hub name of gpt2");
  expect_str(tl_lens_hub_name("/models/pythia-160m/"), "pythia-160m", "hub name of an absolute folder");
  expect_str(tl_lens_hub_name("./models/gpt2"), "gpt2", "hub name of a relative folder");
  char *fixture = tl_sprintf("%s/models/stories260k", tl_test_fixtures());
  expect_str(tl_lens_hub_name(fixture), "stories260k", "hub name of an existing folder");
  free(fixture);
  return tl_test_finish("test_hub_rules");
}
