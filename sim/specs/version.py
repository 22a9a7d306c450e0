"""attnforge's version, on the ground floor so every layer (the Scenario records it in every output) can read it."""

__version__ = "0.2.0"
