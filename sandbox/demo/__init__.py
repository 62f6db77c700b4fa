"""Demo data for the reference client PanPan: a deterministic generator of its POS exports."""
