"""attnforge simulator: Einsum cascades, architecture specs, the analytical engine and the CLI."""

__version__ = "0.1.0"
