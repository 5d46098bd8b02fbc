"""``golfc verify``: reruns a submission on several seeds, owns the clocks, checks sizes and statistics, and
probes the real artifact's evaluation for causality (findings carry the rule ids of docs/rules.md)."""
