/* Hub ids resolved offline from the Hugging Face cache, the way huggingface_hub
 * finds a repository it downloaded before:
 *   <cache>/models--ORG--NAME/refs/<revision>   a file holding a commit hash
 *   <cache>/models--ORG--NAME/snapshots/<commit>/   the files (links into blobs/)
 * <cache> is HF_HUB_CACHE (or its older name HUGGINGFACE_HUB_CACHE), else
 * HF_HOME/hub, else XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
 * A revision names a branch or tag (a refs/ file), a commit, or a unique prefix of
 * a commit that has a snapshot. Nothing is downloaded. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"

/* The cache folder and the setting it comes from (malloc'd). */
static char *cache_root(const char **from) {
  const char *v;
  if ((v = getenv("HF_HUB_CACHE")) && *v) return *from = "HF_HUB_CACHE", tl_strdup(v);
  if ((v = getenv("HUGGINGFACE_HUB_CACHE")) && *v) return *from = "HUGGINGFACE_HUB_CACHE", tl_strdup(v);
  if ((v = getenv("HF_HOME")) && *v) return *from = "HF_HOME", tl_path_join(v, "hub");
  if ((v = getenv("XDG_CACHE_HOME")) && *v) return *from = "XDG_CACHE_HOME", tl_sprintf("%s/huggingface/hub", v);
  v = getenv("HOME");
  *from = "HOME";
  return tl_sprintf("%s/.cache/huggingface/hub", v && *v ? v : ".");
}

/* ORG/NAME or NAME with the characters hub ids allow (no "..", no leading '.' or '-'). */
static int is_hub_id(const char *s) {
  int slashes = 0;
  if (!*s || strstr(s, "..")) return 0;
  for (const char *c = s; *c; c++) {
    if (*c == '/') {
      if (++slashes > 1 || c == s || !c[1]) return 0;
    } else if (!(*c == '-' || *c == '_' || *c == '.' || (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') ||
                 (*c >= 'A' && *c <= 'Z'))) {
      return 0;
    }
  }
  return s[0] != '.' && s[0] != '-';
}

/* A revision may hold '/' (refs/pr/1) but must stay inside refs/. */
static int safe_revision(const char *r) { return *r && r[0] != '/' && !strstr(r, ".."); }

static int is_hex(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
  return n > 0;
}

/* The commit a refs/ file names (malloc'd), or NULL when there is no such file. */
static char *read_ref(const char *repo, const char *revision) {
  char *path = tl_sprintf("%s/refs/%s", repo, revision), *text = NULL;
  size_t len = 0;
  char *commit = NULL;
  if (tl_file_exists(path) && !tl_is_dir(path) && tl_read_file(path, &text, &len) == 0) {
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ')) len--;
    if (is_hex(text, len)) commit = tl_sprintf("%.*s", (int)len, text);
  }
  free(text);
  free(path);
  return commit;
}

/* The one snapshot whose commit starts with prefix (malloc'd), or NULL; *n counts them. */
static char *match_snapshot(const char *snapshots, const char *prefix, int *n) {
  char *found = NULL;
  *n = 0;
  DIR *dp = opendir(snapshots);
  if (!dp) return NULL;
  for (struct dirent *e; (e = readdir(dp));)
    if (e->d_name[0] != '.' && !strncmp(e->d_name, prefix, strlen(prefix)) && ++*n == 1) found = tl_strdup(e->d_name);
  closedir(dp);
  if (*n != 1) {
    free(found);
    found = NULL;
  }
  return found;
}

int tl_model_resolve(const char *name, const char *revision, char **dir) {
  *dir = NULL;
  if (tl_is_dir(name)) {
    *dir = tl_strdup(name);
    return 0;
  }
  if (!is_hub_id(name)) return tl_fail("%s: not a directory (expected a Hugging Face model folder or hub id)", name);
  const char *rev = revision && *revision ? revision : "main", *from;
  if (!safe_revision(rev)) return tl_fail("model '%s': revision '%s' is not a branch, tag or commit", name, rev);
  const char *slash = strchr(name, '/'); /* ORG/NAME -> models--ORG--NAME */
  char *repo_dir = slash ? tl_sprintf("models--%.*s--%s", (int)(slash - name), name, slash + 1)
                         : tl_sprintf("models--%s", name);
  char *root = cache_root(&from);
  char *repo = tl_path_join(root, repo_dir), *snapshots = tl_path_join(repo, "snapshots");
  char *commit = read_ref(repo, rev), *snap = NULL;
  int rc = -1, n = 0;
  if (!tl_is_dir(repo)) {
    tl_fail("model '%s' is not a local folder and not in the Hugging Face cache (searched %s, from %s); fetch it "
            "with: huggingface-cli download %s%s%s", name, repo, from, name, revision ? " --revision " : "",
            revision ? revision : "");
    goto done;
  }
  if (!commit && is_hex(rev, strlen(rev))) { /* a commit, or a unique prefix of one */
    commit = match_snapshot(snapshots, rev, &n);
    if (n > 1) {
      tl_fail("model '%s': revision '%s' is the prefix of %d cached commits (in %s); give more of it", name, rev, n,
              snapshots);
      goto done;
    }
  }
  if (commit) snap = tl_path_join(snapshots, commit);
  if (!snap || !tl_is_dir(snap)) {
    tl_fail("model '%s': revision '%s' is not in the Hugging Face cache (%s%s); fetch it with: huggingface-cli "
            "download %s --revision %s", name, rev, commit ? "no snapshot of its commit in " : "no branch, tag or "
            "commit of that name in ", repo, name, rev);
    goto done;
  }
  *dir = snap;
  snap = NULL;
  rc = 0;
done:
  free(root), free(repo_dir), free(repo), free(snapshots), free(commit), free(snap);
  return rc;
}
