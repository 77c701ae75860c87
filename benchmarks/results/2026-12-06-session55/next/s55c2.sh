set -u
# Prepared in the fifty-fifth session (not run; H100 or H200): Nsight Compute's warp-stall
# samples of the hd128 backward at 1 x 8192 in two forms of .gpu/diag/attention_sm90.cu (main's
# file plus the fifty-fourth session's next/defer-bulk-forms.patch; built with -lineinfo):
# defer-bulk (form 6) and noadd-live (form 5), to see which wait costs defer-bulk its ~37% over
# noadd-live (call1 of this session), and the HGMMA counts. Each SASS page
# comes back gzipped; stall_lines.py prints the top rows. Needs .gpu: the fifty-fourth
# session's next/prep.sh builds that file (later sessions' diag files hold more forms).
# From the root: LIMIT=300 bash benchmarks/results/2026-12-06-session55/next/s55c2.sh
T0=$(date +%s)
LIMIT=${LIMIT:-300}
D=benchmarks/results/2026-12-06-session55/next
nvidia-smi --query-gpu=name --format=csv,noheader | head -1
W=/tmp/w55; mkdir -p $W
B=native/build-li
F=native/src/cuda/kernels/attention_sm90.cu
cp $F /tmp/attention_sm90.main.cu
cp .gpu/diag/attention_sm90.cu $F
CUDAFLAGS=-lineinfo cmake -S native -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DLORA4J_MARCH=native > $W/configure.log 2>&1
timeout 240 cmake --build $B -j 16 > $W/build.log 2>&1
echo "build rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
cp /tmp/attention_sm90.main.cu $F
OBJ=$(command -v cuobjdump || echo /usr/local/cuda/bin/cuobjdump)
$OBJ -sass $B/liblora4j_cuda.so 2>$W/cuobjdump.err | awk '/Function :/ {f=$3} /HGMMA/ {c[f]++}
  END {for (k in c) if (k ~ /attn_bwd_sm90/) print c[k], k}' | sort -k2 > $W/hgmma.txt
echo "hgmma lines: $(wc -l < $W/hgmma.txt)" | tee -a $W/sum.log
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
echo "ncu: $NCU" | tee -a $W/sum.log
for form in defer-bulk noadd-live; do
  [ $(( LIMIT - ($(date +%s) - T0) )) -gt 90 ] || break
  if [ $form = main ]; then unset LORA4J_ATTN_BWD_FORM; else export LORA4J_ATTN_BWD_FORM=$form; fi
  timeout 150 $NCU --clock-control none --section WarpStateStats --section SourceCounters \
    --section SpeedOfLight --section LaunchStats --import-source no -k regex:attn_bwd_sm90 \
    --launch-skip 2 --launch-count 1 -o $W/$form python3 $D/bwd_once.py $B/liblora4j_bench.so 1 8192 \
    > $W/ncu-$form.log 2>&1
  echo "ncu $form rc=$? at $(( $(date +%s) - T0 )) s" | tee -a $W/sum.log
  unset LORA4J_ATTN_BWD_FORM
  $NCU -i $W/$form.ncu-rep --page source --csv --print-source sass > $W/$form.sass.csv 2> $W/$form.export.err
  $NCU -i $W/$form.ncu-rep --page details > $W/$form.details.txt 2>> $W/$form.export.err
  python3 $D/stall_lines.py $W/$form.sass.csv 30 > $W/$form.top.txt 2>&1
  gzip -f $W/$form.sass.csv
done
tar -C $W -czf $OUT/logs.tgz --exclude='*.ncu-rep' .
cat $W/sum.log
cat $W/hgmma.txt
for form in defer-bulk noadd-live; do
  grep -E "Duration|Registers|Warp Cycles Per Issued" $W/$form.details.txt 2>/dev/null | head -4
  cut -c1-150 $W/$form.top.txt 2>/dev/null | head -22
done
echo "done at $(( $(date +%s) - T0 )) s"
