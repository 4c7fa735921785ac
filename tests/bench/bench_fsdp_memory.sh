# Peak resident memory per rank of `tlens train`, with and without --fsdp, on 1, 2
# and 4 ranks, for a synthetic 24-layer d768 GPT-NeoX (pythia-160m's shape: 680 MB of
# fp32 layer weights, 154 MB unembedding). Prints each run's per-rank peak beside the
# layer weights a rank is meant to hold: all of them without --fsdp, 1/N + the two
# gathered layers with it. One training step on pre-tokenized fixture samples.
set -euo pipefail
: "${TLENS:?}" "${FIXTURES:?}"
MPIEXEC=${MPIEXEC:-mpirun}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=$(mktemp -d "${TMPDIR:-/tmp}/tlens_bench_fsdp.XXXXXX")
trap 'rm -rf "$work"' EXIT
L=24 D=768
"$TLENS" synth --arch gpt_neox --layers $L --hidden $D --heads 12 --vocab 50304 --seq 2048 --output "$work/model" >/dev/null
layer_mb=$(awk -v d=$D 'BEGIN { printf "%.1f", (12 * d * d + 13 * d) * 4 / 1048576 }')
echo "bench_fsdp_memory: gpt_neox $L layers, d $D, V 50304: $layer_mb MB of fp32 weights per layer"
for n in 1 2 4; do
  for f in "" --fsdp; do
    rm -rf "$work/out"
    peaks=$("$MPIEXEC" -np $n --oversubscribe -x OMP_NUM_THREADS=1 /usr/bin/time -f "%M" "$TLENS" train \
      --model.name "$work/model" --data.name "$FIXTURES/data/chunks_gpt2_tinystories_train_256.safetensors" \
      --max_seq_len 256 --tokens_per_step 1024 --per_gpu_batch_size 1 --num_steps 1 --progress=false \
      --output "$work/out" $f 2>&1 >/dev/null | grep -E '^[0-9]+$' | sort -n | tail -1)
    if [ -n "$f" ] && [ $n -gt 1 ]; then
      want=$(awk -v l=$layer_mb -v L=$L -v n=$n 'BEGIN { printf "%.0f", l * L / n + 2 * l }')
    else
      want=$(awk -v l=$layer_mb -v L=$L 'BEGIN { printf "%.0f", l * L }')
    fi
    printf "  %d rank(s) %-6s  peak RSS per rank %5.0f MB   (layer weights held: %s MB)\n" $n "${f:-}" \
      "$(awk -v k="$peaks" 'BEGIN { print k / 1024 }')" "$want"
  done
done
