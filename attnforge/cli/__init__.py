"""The command line (front layer): argument parsing into a Scenario, dispatch to a fidelity, rendering."""
