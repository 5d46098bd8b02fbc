#!/usr/bin/env bash
# Device call 24 (two H200s, one host): one GPU against two with the build whose Muon step is in multi-tensor
# form (its several-rank path copies each rank's updates into the shared buffer with one op and adds the bf16
# updates to the fp32 weights in one op): the same loss curve within noise.
bash "$(dirname "$0")/../device_compare_ranks.sh" 2 call24
