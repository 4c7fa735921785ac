#!/bin/bash
# Hub ids, offline, from Hugging Face caches built here by hand the way the hub
# client builds them: blobs/<sha256> holding the bytes, snapshots/<commit>/<path> a
# relative symbolic link to ../../blobs/<sha256>, refs/<branch or tag> holding the
# commit without a newline. The reference for every value is the same command given
# the fixture's local folders (whose outputs the golden tests check against
# transformers and tuned-lens): a run by id must be bitwise identical to it.
#   models: --model.name ORG/NAME at main, a branch, a tag, a full commit, a prefix;
#   lenses: -l ID from spaces--AlignmentResearch--tuned-lens/.../lens/ID (ORG/NAME
#     and NAME), a complete local folder first, TUNED_LENS_REPO_ID/_TYPE overrides
#     and their bad values; `tlens lenses` [--model]; --hub_layout paths of train and
#     export; not cached, a link to a missing blob, a missing snapshot: one line.
source "$(dirname "$0")/../sh_common.sh"
LENS=$FIXTURES/golden/trajectory/stories260k/lens
LLAMA_LENS=$FIXTURES/golden/llama/lens
DATA=$FIXTURES/data/tinystories_valid_head.jsonl
C1=1111111111aaaaaaaaaabbbbbbbbbbcccccccccc
C2=2222222222ddddddddddeeeeeeeeeeffffffffff
C3=1111111111ffffffffff00000000009999999999 # shares the prefix 1111111111 with C1
S1=3333333333444444444455555555556666666666
cd "$WORK"

# put REPO COMMIT SRC_DIR DEST_SUBFOLDER FILE...: the files of SRC_DIR as
# REPO/snapshots/COMMIT/DEST_SUBFOLDER/FILE links into REPO/blobs/
put() {
  local repo=$1 commit=$2 src=$3 sub=$4; shift 4
  mkdir -p "$repo/blobs" "$repo/refs"
  for f in "$@"; do
    local sha; sha=$(sha256sum "$src/$f" | cut -d' ' -f1)
    cp "$src/$f" "$repo/blobs/$sha"
    local link=$repo/snapshots/$commit/$sub/$f
    mkdir -p "$(dirname "$link")"
    ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$repo/blobs/$sha")" "$link"
  done
}
ref() { mkdir -p "$(dirname "$1/refs/$2")"; printf %s "$3" > "$1/refs/$2"; }

# exit status $1 and one error line (other log lines may come before it) holding
# every pattern up to --, from the command after --
fails() {
  local want=$1; shift
  local pats=()
  while [ "$1" != -- ]; do pats+=("$1"); shift; done
  shift
  local rc=0
  "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  [ $rc -eq "$want" ] || { cat "$WORK/err"; fail "exit $rc (want $want): $*"; }
  [ "$(grep -c 'error: ' "$WORK/err")" -eq 1 ] && [ "$(tail -n 1 "$WORK/err" | grep -c 'error: ')" -eq 1 ] \
    || { cat "$WORK/err"; fail "not one error line, last: $*"; }
  tail -n 1 "$WORK/err" > "$WORK/errline"
  for p in "${pats[@]}"; do grep -qF -- "$p" "$WORK/errline" || { cat "$WORK/err"; fail "no '$p' in the error of: $*"; }; done
}

HUB=$WORK/hub
export HF_HUB_CACHE=$HUB
unset HUGGINGFACE_HUB_CACHE TUNED_LENS_REPO_ID TUNED_LENS_REPO_TYPE
M=$HUB/models--tl-test--stories260k
MFILES=(config.json model.safetensors tokenizer.json)
put "$M" $C1 "$MODEL" . "${MFILES[@]}"
put "$M" $C2 "$FIXTURES/golden/llama/model" . config.json model.safetensors # another model: 3 layers
put "$M" $C3 "$MODEL" . "${MFILES[@]}"
ref "$M" main $C1
ref "$M" dev $C2
ref "$M" v1.0 $C2
SPACE=$HUB/spaces--AlignmentResearch--tuned-lens
put "$SPACE" $S1 "$LENS" lens/tl-test/stories260k config.json params.pt
put "$SPACE" $S1 "$LENS" lens/stories260k config.json params.pt
put "$SPACE" $S1 "$LLAMA_LENS" lens/llama-golden config.json params.pt
put "$SPACE" $S1 "$LENS" lens/half config.json # no params.pt: not a lens
ref "$SPACE" main $S1

# ---- models by id and revision: the snapshot the revision names ----
layers() { "$TLENS" info --model tl-test/stories260k "$@" 2>"$WORK/err" | sed -n 's/^layers: *//p'; }
for rev in "" main $C1 1111111111a; do
  [ "$(layers ${rev:+--revision $rev})" = 5 ] || { cat "$WORK/err"; fail "revision '$rev' is not $C1"; }
done
for rev in dev v1.0 $C2 2222; do
  [ "$(layers --revision $rev)" = 3 ] || { cat "$WORK/err"; fail "revision '$rev' is not $C2"; }
done
fails 1 "revision '1111111111' is the prefix of 2 cached commits" -- "$TLENS" info --model tl-test/stories260k --revision 1111111111
fails 1 "revision 'nope' is not in the Hugging Face cache" "$M" "huggingface-cli download tl-test/stories260k --revision nope" \
  -- "$TLENS" info --model tl-test/stories260k --revision nope
fails 1 "model 'tl-test/absent' is not a local folder and not in the Hugging Face cache" "$HUB/models--tl-test--absent" \
  "from HF_HUB_CACHE" "huggingface-cli download tl-test/absent" -- "$TLENS" info --model tl-test/absent
fails 1 "from HF_HOME" "$WORK/home/hub/models--tl-test--absent" -- env -u HF_HUB_CACHE HF_HOME="$WORK/home" \
  "$TLENS" info --model tl-test/absent
fails 1 "from HOME" "$WORK/h/.cache/huggingface/hub/models--tl-test--absent" -- env -u HF_HUB_CACHE -u HF_HOME \
  -u XDG_CACHE_HOME HOME="$WORK/h" "$TLENS" info --model tl-test/absent
[ "$(env HF_HUB_CACHE="~/hub" HOME="$WORK" "$TLENS" info --model tl-test/stories260k | sed -n 's/^layers: *//p')" = 5 ] \
  || fail "HF_HUB_CACHE=~/hub is not expanded as os.path.expanduser does"

# a download cut short: a link to a blob that is missing; a ref to a commit without a snapshot
B=$HUB/models--tl-test--broken
put "$B" $C1 "$MODEL" . "${MFILES[@]}"
ref "$B" main $C1
rm "$B/blobs/$(sha256sum "$MODEL/model.safetensors" | cut -d' ' -f1)"
fails 1 "model 'tl-test/broken': $B/snapshots/$C1/model.safetensors links to a blob that is not in the cache" \
  "huggingface-cli download tl-test/broken --revision main" -- "$TLENS" info --model tl-test/broken
ref "$B" v2 $C2
fails 1 "revision 'v2' is not in the Hugging Face cache (no snapshot of its commit in $B)" \
  -- "$TLENS" info --model tl-test/broken --revision v2

# ---- lenses by id: bitwise the run given the lens folder (and the model folder) ----
echo '[1, 337, 403, 132, 143, 387, 91, 110, 383, 298, 429, 279]' > ids.json
traj() { # traj OUT MODEL LENS [env...]
  local out=$1 model=$2 lens=$3; shift 3
  env "$@" "$TLENS" trajectory --model "$model" -l "$lens" --logit --input_ids ids.json --output "$out" \
    --save_log_probs "$out.safetensors" 2>"$out.log" || { cat "$out.log"; fail "trajectory $model -l $lens"; }
}
same() { cmp "$1" "$2" || fail "$2 differs from $1"; }
# every file a trajectory or eval run writes (its run lock aside), byte for byte
same_run() { diff -r -x .tlens.lock "$1" "$2" >/dev/null || fail "$2/ differs from $1/"; }
traj ref "$MODEL" "$LENS"
for id in tl-test/stories260k stories260k; do
  n=${id//\//_}
  traj "id_$n" "$MODEL" "$id"
  same_run ref "id_$n"
  same ref.safetensors "id_$n.safetensors"
done
# the analysis commands take the model by id as well (at a revision), bitwise the folder's run
traj id_model tl-test/stories260k "$LENS"
same_run ref id_model
same ref.safetensors id_model.safetensors
"$TLENS" generate --model "$MODEL" -l "$LENS" --layer 3 --input_ids ids.json --greedy --max_new_tokens 6 \
  > gen_dir.txt 2>/dev/null || fail "generate by folder"
"$TLENS" generate --model tl-test/stories260k --revision $C1 -l "$LENS" --layer 3 --input_ids ids.json --greedy \
  --max_new_tokens 6 > gen_id.txt 2>/dev/null || fail "generate by id"
same gen_dir.txt gen_id.txt
fails 1 "revision 'nope' is not in the Hugging Face cache" -- "$TLENS" trajectory --model tl-test/stories260k \
  --revision nope -l "$LENS" --input_ids ids.json
# a local folder comes first when it holds both files (this one: the 3-layer llama lens) ...
mkdir -p tl-test/stories260k && cp "$LLAMA_LENS"/* tl-test/stories260k/
fails 1 "lens has 3 layers but the model has 5" -- "$TLENS" trajectory --model "$MODEL" -l tl-test/stories260k \
  --input_ids ids.json --output local
rm -r tl-test
# ... and not when it lacks one (load_lens_artifacts then asks the hub)
mkdir stories260k && cp "$LENS/config.json" stories260k/
traj partial "$MODEL" stories260k
same_run ref partial
same ref.safetensors partial.safetensors
rm -r stories260k

# eval: metrics by id equal the metrics by folder
ev() { # ev OUT MODEL LENS
  "$TLENS" eval --model.name "$2" -l "$3" --data.name "$DATA" --max_seq_len 64 --tokens 1024 --threads 1 \
    --cache_dir "$WORK/cache" --progress=false --output "$1" >"$1.out" 2>"$1.log" || { cat "$1.log"; fail "eval $2 -l $3"; }
}
ev eval_ref "$MODEL" "$LENS"
ev eval_id tl-test/stories260k tl-test/stories260k
same_run eval_ref eval_id
[ -s eval_id/aggregate_metrics.json ] && [ -s eval_id/batches.jsonl ] || fail "eval by id wrote no metrics"

# TUNED_LENS_REPO_ID / TUNED_LENS_REPO_TYPE: another repository, of another type
put "$HUB/models--tl-test--lenses" $C1 "$LENS" lens/mine config.json params.pt
ref "$HUB/models--tl-test--lenses" main $C1
put "$HUB/datasets--tl-test--lens-data" $C2 "$LENS" lens/mine config.json params.pt
ref "$HUB/datasets--tl-test--lens-data" main $C2
traj env_model "$MODEL" mine TUNED_LENS_REPO_ID=tl-test/lenses TUNED_LENS_REPO_TYPE=model
same_run ref env_model
traj env_dataset "$MODEL" mine TUNED_LENS_REPO_ID=tl-test/lens-data TUNED_LENS_REPO_TYPE=dataset
same_run ref env_dataset
fails 1 "TUNED_LENS_REPO_ID is 'not an id': not a hub repository id" -- env TUNED_LENS_REPO_ID="not an id" \
  "$TLENS" trajectory --model "$MODEL" -l mine --input_ids ids.json
fails 1 "TUNED_LENS_REPO_TYPE is 'spaces': not a repository type (expected model, dataset or space)" \
  -- env TUNED_LENS_REPO_TYPE=spaces "$TLENS" trajectory --model "$MODEL" -l mine --input_ids ids.json
fails 1 "TUNED_LENS_REPO_ID is 'a--b': not a hub repository id" -- env TUNED_LENS_REPO_ID=a--b \
  "$TLENS" lenses

# lenses not found: one line naming the folders searched and the download command
fails 1 "lens 'tl-test/absent' is not a local folder (no tl-test/absent/config.json + params.pt) and not in the Hugging Face cache" \
  "searched $SPACE/snapshots/$S1/lens/tl-test/absent, from HF_HUB_CACHE" \
  "cached lenses: llama-golden, stories260k, tl-test/stories260k" \
  "fetch it with: huggingface-cli download AlignmentResearch/tuned-lens --repo-type space --include 'lens/tl-test/absent/*'" \
  -- "$TLENS" trajectory --model "$MODEL" -l tl-test/absent --input_ids ids.json
fails 1 "lens 'gpt2' is not a local folder" "searched $WORK/empty/spaces--AlignmentResearch--tuned-lens, from HF_HUB_CACHE" \
  -- env HF_HUB_CACHE="$WORK/empty" "$TLENS" eval --model.name "$MODEL" -l gpt2 --data.name "$DATA" --max_seq_len 64 \
  --tokens 64 --cache_dir "$WORK/cache" --progress=false --output "$WORK/e_missing"
# a lens whose params.pt blob is gone; a space whose main names no snapshot
BS=$WORK/hub2/spaces--AlignmentResearch--tuned-lens
put "$BS" $S1 "$LENS" lens/gpt2 config.json params.pt
ref "$BS" main $S1
rm "$BS/blobs/$(sha256sum "$LENS/params.pt" | cut -d' ' -f1)"
fails 1 "lens 'gpt2': $BS/snapshots/$S1/lens/gpt2/params.pt links to a blob that is not in the cache" \
  -- env HF_HUB_CACHE="$WORK/hub2" "$TLENS" trajectory --model "$MODEL" -l gpt2 --input_ids ids.json
ref "$BS" main $C2
fails 1 "lens repository space 'AlignmentResearch/tuned-lens': revision 'main' is not in the Hugging Face cache (no snapshot of its commit in $BS)" \
  -- env HF_HUB_CACHE="$WORK/hub2" "$TLENS" trajectory --model "$MODEL" -l gpt2 --input_ids ids.json

# ---- tlens lenses ----
"$TLENS" lenses >list 2>"$WORK/err" || { cat "$WORK/err"; fail "tlens lenses"; }
printf '%s\n' llama-golden stories260k tl-test/stories260k | diff - list || fail "tlens lenses listing"
"$TLENS" lenses --model tl-test/stories260k >list || fail "tlens lenses --model"
printf '%s\n' tl-test/stories260k | diff - list || fail "tlens lenses --model listing"
TUNED_LENS_REPO_ID=tl-test/lenses TUNED_LENS_REPO_TYPE=model "$TLENS" lenses >list || fail "tlens lenses, env"
printf '%s\n' mine | diff - list || fail "tlens lenses in TUNED_LENS_REPO_ID"
HF_HUB_CACHE=$WORK/empty "$TLENS" lenses >list || fail "tlens lenses on an empty cache"
grep -qF "no lens artifacts cached (searched $WORK/empty/spaces--AlignmentResearch--tuned-lens, from HF_HUB_CACHE); fetch them with: huggingface-cli download AlignmentResearch/tuned-lens --repo-type space" list \
  || { cat list; fail "tlens lenses: the none-cached line"; }
"$TLENS" lenses --model EleutherAI/pythia-160m >list || fail "tlens lenses --model, none"
grep -qF "no lens for EleutherAI/pythia-160m cached" list || { cat list; fail "tlens lenses --model: none line"; }
"$TLENS" lenses --help | grep -qF "usage: tlens lenses [--model ORG/NAME]" || fail "tlens lenses --help"
fails 2 "--model: 'x y' is not a hub model id" -- "$TLENS" lenses --model "x y"
fails 2 "unknown" -- "$TLENS" lenses --bogus

# ---- --hub_layout: lens/ORG/NAME for a hub id, lens/<folder name> for a folder ----
TRAIN=(--data.name "$DATA" --max_seq_len 64 --tokens_per_step 512 --per_gpu_batch_size 2 --num_steps 2
       --checkpoint_freq 1 --threads 1 --cache_dir "$WORK/cache" --progress=false)
"$TLENS" train --model.name tl-test/stories260k "${TRAIN[@]}" --output run --hub_layout th >/dev/null 2>"$WORK/err" \
  || { cat "$WORK/err"; fail "train by hub id"; }
same run/params.pt th/lens/tl-test/stories260k/params.pt
same run/config.json th/lens/tl-test/stories260k/config.json
grep -qF '"base_model_name_or_path": "tl-test/stories260k"' run/config.json || fail "the lens does not record the id"
"$TLENS" export --checkpoint run/checkpoints --hub_layout eh >/dev/null 2>"$WORK/err" || { cat "$WORK/err"; fail "export"; }
same run/params.pt eh/lens/tl-test/stories260k/params.pt
same run/config.json eh/lens/tl-test/stories260k/config.json
"$TLENS" export --checkpoint run/checkpoints --model.name "$MODEL/" --output ex --hub_layout eh2 >/dev/null || fail "export, folder"
same ex/params.pt eh2/lens/stories260k/params.pt
"$TLENS" export --checkpoint run/checkpoints --model.name gpt2 --hub_layout eh3 >/dev/null || fail "export, gpt2"
[ -s eh3/lens/gpt2/params.pt ] && [ -s eh3/lens/gpt2/config.json ] || fail "export --hub_layout: no eh3/lens/gpt2/"
fails 2 "--checkpoint and --output (or --hub_layout) are required" -- "$TLENS" export --checkpoint run/checkpoints
# the exported lens loads back by id from a cache that holds it
put "$WORK/hub3/spaces--AlignmentResearch--tuned-lens" $S1 eh/lens/tl-test/stories260k lens/tl-test/stories260k \
  config.json params.pt
ref "$WORK/hub3/spaces--AlignmentResearch--tuned-lens" main $S1
put "$WORK/hub3/models--tl-test--stories260k" $C1 "$MODEL" . "${MFILES[@]}"
ref "$WORK/hub3/models--tl-test--stories260k" main $C1
traj trained_local "$MODEL" run
traj trained_id "$MODEL" tl-test/stories260k HF_HUB_CACHE="$WORK/hub3"
same_run trained_local trained_id
same trained_local.safetensors trained_id.safetensors
echo "hub ids: ok"
