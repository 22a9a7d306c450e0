"""The analytical fidelity: Einsum cascades, schedules, the vectorised engine and its Results."""
