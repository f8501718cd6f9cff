"""System speed benchmarks: print ratios measured side by side in one run."""
