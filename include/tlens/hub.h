/* The Hugging Face hub cache, read offline the way huggingface_hub reads it.
 *
 * A repository downloaded before lives in <cache>/<type>s--ORG--NAME/:
 *   refs/<revision>       a file holding a commit hash (branches, tags, refs/pr/N)
 *   snapshots/<commit>/   the files at that commit, symbolic links into blobs/
 *   blobs/<hash>          the contents
 * Nothing here downloads anything; model ids (tl_model_resolve) and lens ids
 * (tl_lens_resolve) are both looked up through these functions. */
#ifndef TLENS_HUB_H
#define TLENS_HUB_H

#include <stdbool.h>

/* The cache folder (malloc'd): HF_HUB_CACHE (or its older name
 * HUGGINGFACE_HUB_CACHE), else HF_HOME/hub, else XDG_CACHE_HOME/huggingface/hub,
 * else ~/.cache/huggingface/hub, with a leading "~/" expanded as Python's
 * os.path.expanduser does. *from: the setting it came from, for messages. */
char *tl_hub_cache_dir(const char **from);

/* A repository id huggingface_hub accepts: NAME or ORG/NAME of letters, digits,
 * '-', '_' and '.', neither part starting or ending with '-' or '.', no "--" or
 * "..", at most 96 characters. */
bool tl_hub_valid_id(const char *id);

/* "model", "dataset" or "space": the repository types the hub knows. */
bool tl_hub_valid_type(const char *type);

/* <cache>/<type>s--ORG--NAME (malloc'd). */
char *tl_hub_repo_dir(const char *cache, const char *type, const char *id);

/* A revision names something inside refs/ or snapshots/ (no "..", not absolute). */
bool tl_hub_safe_revision(const char *revision);

/* The snapshot folder (malloc'd in *snap) of revision (NULL: "main") in the
 * repository folder repo: a branch or tag (a refs/ file), a full commit, or a
 * unique prefix of a commit that has a snapshot. Not found, or a prefix of several
 * commits: -1 after one line beginning with `what` (e.g. "model 'ORG/NAME'") and
 * naming the folder searched; `fetch` is the command that would download it
 * (" --revision REV" is appended). */
int tl_hub_snapshot(const char *repo, const char *revision, const char *what, const char *fetch, char **snap);

/* The first symbolic link under dir (searched recursively) whose target is missing,
 * as a path relative to dir (malloc'd), or NULL when every link resolves: the hub
 * client leaves such links when a download is interrupted or a blob is deleted. */
char *tl_hub_broken_link(const char *dir);

#endif
