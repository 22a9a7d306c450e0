"""Models and specs below the front: specs (errors, arch, Scenario), the analytical engine, the exact cycle models
and the fixed-point golden models of each accelerator family. Nothing here imports ``rtl``, ``reports`` or the
front (``attnforge.cli``, sweeps, GPU timing)."""
