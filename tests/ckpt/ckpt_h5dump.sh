#!/bin/bash
# A checkpoint is self-describing in h5dump: named groups and datasets, the root
# attributes and per-dataset checksums. Skipped (77) where h5dump is not installed.
set -u
command -v h5dump >/dev/null || { echo "h5dump not installed: skipping"; exit 77; }
rm -rf "$WORK" && mkdir -p "$WORK"
"$TESTBIN/test_ckpt" --sample "$WORK/ck" || exit 1
f="$WORK/ck/step_00000042.h5"
out=$(h5dump "$f") || { echo "h5dump failed on $f"; exit 1; }
fail=0
for want in 'GROUP "lens"' 'GROUP "0"' 'DATASET "weight"' 'DATASET "bias"' 'GROUP "optim"' 'DATASET "exp_avg"' \
            'ATTRIBUTE "magic"' '"tlens-checkpoint"' 'ATTRIBUTE "complete"' 'ATTRIBUTE "crc32"' \
            'ATTRIBUTE "format_version"' 'DATASET "config"' 'H5T_IEEE_F32LE' 'H5T_STD_U64LE'; do
  grep -qF "$want" <<<"$out" || { echo "h5dump output lacks: $want"; fail=1; }
done
# the weight values as h5dump prints them (hand-written in the sample)
w=$(h5dump -d /lens/0/weight "$f")
grep -qF 'DATASPACE  SIMPLE { ( 3, 4 ) / ( 3, 4 ) }' <<<"$w" || { echo "weight shape not [3,4]"; fail=1; }
grep -qE '\(0,0\): 0\.5, 1\.5, -2\.25' <<<"$w" || { echo "weight values not shown: $w"; fail=1; }
[ $fail = 0 ] && echo "ckpt_h5dump: ok"
exit $fail
