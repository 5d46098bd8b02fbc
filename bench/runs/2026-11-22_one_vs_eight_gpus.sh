#!/usr/bin/env bash
# Device call 20 (eight H200s, one host): one GPU against eight with the final build (grad_accum_steps 8 and 1).
bash "$(dirname "$0")/../device_compare_ranks.sh" 8 call20
