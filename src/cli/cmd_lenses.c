/* tlens lenses: the lens artifacts present in the Hugging Face cache (the
 * reference's available_lens_artifacts, read offline from the cached space). */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "tlens/core.h"
#include "tlens/export.h"
#include "tlens/hub.h"

static const char *USAGE =
    "usage: tlens lenses [--model ORG/NAME]\n\n"
    "Lists, one id a line, the lenses in the cached hub space AlignmentResearch/tuned-lens\n"
    "(its main revision, folders lens/<id>/ holding config.json + params.pt): the ids that\n"
    "-l / --lens_name_or_path accepts. With --model, only that model's lens. The cache is\n"
    "HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub; TUNED_LENS_REPO_ID and\n"
    "TUNED_LENS_REPO_TYPE (model, dataset or space) name another repository. Nothing is\n"
    "downloaded; when none is cached a line says so and the status is still 0.";

/* id is the model's lens, or a lens in a folder below it */
static bool of_model(const char *id, const char *model) {
  size_t n = strlen(model);
  return !strncmp(id, model, n) && (id[n] == 0 || id[n] == '/');
}

static int list_lenses(const char *model) {
  tl_lens_space s;
  TL_TRY(tl_lens_space_open(&s));
  char **ids = NULL;
  int n = 0, shown = 0;
  tl_lens_space_list(&s, &ids, &n);
  for (int i = 0; i < n; i++)
    if (!model || of_model(ids[i], model)) printf("%s\n", ids[i]), shown++;
  const char *where = s.snapshot ? s.snapshot : s.repo;
  if (shown) {
    tl_info("%d lens%s in %s '%s' (%s/lens)", shown, shown == 1 ? "" : "es", s.repo_type, s.repo_id, where);
  } else if (model) {
    printf("no lens for %s cached (searched %s/lens, from %s); fetch it with: %s --include 'lens/%s/*'\n", model, where,
           s.from, s.fetch, model);
  } else {
    printf("no lens artifacts cached (searched %s, from %s); fetch them with: %s\n", where, s.from, s.fetch);
  }
  tl_lens_ids_free(ids, n);
  tl_lens_space_free(&s);
  return 0;
}

int tl_cmd_lenses(int argc, char **argv) {
  char *model = NULL;
  tl_opt opts[] = {{"model|model.name", 'm', TL_OPT_STR, &model, "only the lens of this hub model id", 0, 0, 0}};
  int n = (int)(sizeof opts / sizeof opts[0]);
  int status = tl_cli_parse("lenses", opts, n, argc, argv, USAGE, false, NULL, NULL);
  if (status >= 0) return status;
  if (model && !tl_hub_valid_id(model)) {
    tl_fail("--model: '%s' is not a hub model id (expected ORG/NAME or NAME)", model);
    status = tl_cli_report("lenses", TL_EXIT_USAGE);
  } else {
    status = list_lenses(model) ? tl_cli_error("lenses") : TL_EXIT_OK;
  }
  tl_args_free(opts, n);
  return status;
}
