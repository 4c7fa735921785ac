/* Hub ids resolved offline from the Hugging Face cache, the way huggingface_hub
 * finds a repository it downloaded before:
 *   <cache>/models--ORG--NAME/refs/<revision>   a file holding a commit hash
 *   <cache>/models--ORG--NAME/snapshots/<commit>/   the files (links into blobs/)
 * <cache> is HF_HUB_CACHE (or its older name HUGGINGFACE_HUB_CACHE), else
 * HF_HOME/hub, else XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub
 * (the rules, shared with lens ids, are in src/core/hub.c). A revision names a
 * branch or tag (a refs/ file), a commit, or a unique prefix of a commit that has a
 * snapshot. Nothing is downloaded. */
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"
#include "tlens/hub.h"

int tl_model_resolve(const char *name, const char *revision, char **dir) {
  *dir = NULL;
  if (tl_is_dir(name)) {
    *dir = tl_strdup(name);
    return 0;
  }
  if (!tl_hub_valid_id(name)) return tl_fail("%s: not a directory (expected a Hugging Face model folder or hub id)", name);
  const char *rev = revision && *revision ? revision : "main", *from;
  if (!tl_hub_safe_revision(rev)) return tl_fail("model '%s': revision '%s' is not a branch, tag or commit", name, rev);
  char *root = tl_hub_cache_dir(&from), *repo = tl_hub_repo_dir(root, "model", name);
  char *what = tl_sprintf("model '%s'", name), *fetch = tl_sprintf("huggingface-cli download %s", name);
  char *snap = NULL, *broken = NULL;
  int rc = -1;
  if (!tl_is_dir(repo)) {
    tl_fail("model '%s' is not a local folder and not in the Hugging Face cache (searched %s, from %s); fetch it "
            "with: %s%s%s", name, repo, from, fetch, revision ? " --revision " : "", revision ? revision : "");
  } else if (tl_hub_snapshot(repo, rev, what, fetch, &snap) == 0) {
    /* an interrupted download leaves links to blobs that never arrived; name the
     * file here rather than fail later on a "missing" config.json */
    if ((broken = tl_hub_broken_link(snap)))
      tl_fail("model '%s': %s/%s links to a blob that is not in the cache (an interrupted download?); fetch it again "
              "with: %s --revision %s", name, snap, broken, fetch, rev);
    else rc = 0;
  }
  if (rc == 0) *dir = snap;
  else free(snap);
  free(root), free(repo), free(what), free(fetch), free(broken);
  return rc;
}
