set -u
export OUT
g++ -O2 -std=c++17 -I/usr/local/cuda/include .gpu/probe_fp8.cpp -o /tmp/probe_fp8 -L/usr/local/cuda/lib64 -lcublasLt -lcudart > /tmp/probe_fp8.log 2>&1
timeout 100 /tmp/probe_fp8 >> /tmp/probe_fp8.log 2>&1
echo "rc=$?" >> /tmp/probe_fp8.log
cp /tmp/probe_fp8.log $OUT/
cat /tmp/probe_fp8.log
