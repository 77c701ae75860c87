# Fifty-first session, fourth call (the machine still warm from call3, its build kept): the
# real-width tests on the conversions 8 values a thread (test_realwidth_cuda, 7B widths).
mkdir -p $OUT/w4; (STEPS=build CUDA_ARCHS=90 OUT=$OUT/w4/b timeout 120 bash scripts/gpu/run.sh > $OUT/w4/build.log 2>&1; echo build rc=$?; cd native/build-gpu && LORA4J_REQUIRE_GPU=1 timeout 260 ctest --timeout 250 -R test_realwidth_cuda -V > $OUT/w4/realwidth.log 2>&1; echo ctest rc=$?); grep -aE "tests passed|FAIL|Skipped" $OUT/w4/realwidth.log | head -5; grep -ac PASS $OUT/w4/realwidth.log; rm -rf $OUT/w4/b
