#!/usr/bin/env bash
# Device call 28 (two H200s): the GPU parity tests, now with a two-GPU test (NCCL gradients, shared Muon
# updates and the clock agreed over gloo leave both ranks' weights identical while the LR reads the clock).
set -u
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
bash "$(dirname "$0")/../device_gpu_tests.sh" > /dev/null 2>&1; echo "rc=$?"
grep -E "PASSED|FAILED|ERROR|SKIPPED|passed|failed" "$OUT/gpu_tests.log" | tail -25
