/* The Hugging Face hub cache, offline (tlens/hub.h). The rules follow
 * huggingface_hub: its constants.py for the cache folder, repo_folder_name for
 * <type>s--ORG--NAME, validate_repo_id for what an id may hold, and the
 * local_files_only path of hf_hub_download / snapshot_download for revisions
 * (refs/<revision> holds the commit; a commit names its snapshot directly). One
 * addition: a unique prefix of a cached commit is accepted, as git accepts one. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tlens/core.h"
#include "tlens/hub.h"

/* os.path.expanduser for "~" and "~/...": the only forms HOME alone can expand. */
static char *expand_home(const char *path) {
  const char *home = getenv("HOME");
  if (path[0] == '~' && (path[1] == '/' || !path[1]) && home && *home) return tl_sprintf("%s%s", home, path + 1);
  return tl_strdup(path);
}

char *tl_hub_cache_dir(const char **from) {
  const char *v;
  char *base, *dir;
  if ((v = getenv("HF_HUB_CACHE")) && *v) return *from = "HF_HUB_CACHE", expand_home(v);
  if ((v = getenv("HUGGINGFACE_HUB_CACHE")) && *v) return *from = "HUGGINGFACE_HUB_CACHE", expand_home(v);
  if ((v = getenv("HF_HOME")) && *v) {
    *from = "HF_HOME";
    base = expand_home(v);
    dir = tl_path_join(base, "hub");
  } else if ((v = getenv("XDG_CACHE_HOME")) && *v) {
    *from = "XDG_CACHE_HOME";
    base = expand_home(v);
    dir = tl_path_join(base, "huggingface/hub");
  } else {
    *from = "HOME";
    base = expand_home("~");
    dir = tl_path_join(!strcmp(base, "~") ? "." : base, ".cache/huggingface/hub");
  }
  free(base);
  return dir;
}

static bool id_char(char c) {
  return c == '-' || c == '_' || c == '.' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* One part of an id: id characters, not starting or ending with '-' or '.'
 * (validate_repo_id's \b[\w\-.]+\b). */
static bool id_part(const char *s, size_t n) {
  if (n == 0 || s[0] == '-' || s[0] == '.' || s[n - 1] == '-' || s[n - 1] == '.') return false;
  for (size_t i = 0; i < n; i++)
    if (!id_char(s[i])) return false;
  return true;
}

bool tl_hub_valid_id(const char *id) {
  size_t n = strlen(id);
  if (n == 0 || n > 96 || strstr(id, "--") || strstr(id, "..")) return false;
  const char *slash = strchr(id, '/');
  if (!slash) return id_part(id, n);
  return id_part(id, (size_t)(slash - id)) && id_part(slash + 1, n - (size_t)(slash - id) - 1);
}

bool tl_hub_valid_type(const char *type) {
  return !strcmp(type, "model") || !strcmp(type, "dataset") || !strcmp(type, "space");
}

char *tl_hub_repo_dir(const char *cache, const char *type, const char *id) {
  const char *slash = strchr(id, '/');
  char *folder = slash ? tl_sprintf("%ss--%.*s--%s", type, (int)(slash - id), id, slash + 1)
                       : tl_sprintf("%ss--%s", type, id);
  char *dir = tl_path_join(cache, folder);
  free(folder);
  return dir;
}

/* A revision may hold '/' (refs/pr/1) but must stay inside refs/. */
bool tl_hub_safe_revision(const char *r) { return *r && r[0] != '/' && !strstr(r, ".."); }

static bool is_hex(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
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

int tl_hub_snapshot(const char *repo, const char *revision, const char *what, const char *fetch, char **snap) {
  const char *rev = revision && *revision ? revision : "main";
  *snap = NULL;
  if (!tl_hub_safe_revision(rev)) return tl_fail("%s: revision '%s' is not a branch, tag or commit", what, rev);
  char *snapshots = tl_path_join(repo, "snapshots"), *commit = read_ref(repo, rev), *dir = NULL;
  int n = 0, rc = -1;
  if (!commit && is_hex(rev, strlen(rev))) { /* a commit, or a unique prefix of one */
    commit = match_snapshot(snapshots, rev, &n);
    if (n > 1) {
      tl_fail("%s: revision '%s' is the prefix of %d cached commits (in %s); give more of it", what, rev, n, snapshots);
      goto done;
    }
  }
  if (commit) dir = tl_path_join(snapshots, commit);
  if (!dir || !tl_is_dir(dir)) {
    tl_fail("%s: revision '%s' is not in the Hugging Face cache (%s%s); fetch it with: %s --revision %s", what, rev,
            commit ? "no snapshot of its commit in " : "no branch, tag or commit of that name in ", repo, fetch, rev);
    goto done;
  }
  *snap = dir;
  dir = NULL;
  rc = 0;
done:
  free(snapshots), free(commit), free(dir);
  return rc;
}

/* Depth-first; real folders only (a link to a folder is checked, not entered, so
 * a link cycle cannot loop). */
static char *broken_under(const char *dir, const char *rel, int depth) {
  DIR *dp = opendir(dir);
  char *found = NULL;
  if (!dp) return NULL;
  for (struct dirent *e; !found && (e = readdir(dp));) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char *path = tl_path_join(dir, e->d_name), *sub = rel ? tl_path_join(rel, e->d_name) : tl_strdup(e->d_name);
    struct stat ls, st;
    if (lstat(path, &ls) == 0) {
      if (S_ISLNK(ls.st_mode) && stat(path, &st) != 0) found = tl_strdup(sub);
      else if (S_ISDIR(ls.st_mode) && depth < 16) found = broken_under(path, sub, depth + 1);
    }
    free(path), free(sub);
  }
  closedir(dp);
  return found;
}

char *tl_hub_broken_link(const char *dir) { return broken_under(dir, NULL, 0); }
