#!/usr/bin/env bash
# Device call 16 (two H200s): call 3's one-vs-two-GPU comparison with the build of session 3 ((B, T, H, D)
# attention order).
bash "$(dirname "$0")/../device_compare_ranks.sh" 2 call16
