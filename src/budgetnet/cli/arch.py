"""`budgetnet arch list|show`: the presets and any spec, with parameter and MAC counts."""
