"""Input specifications: errors, arch specs (typed per family), the Scenario, registries."""
