"""SpAtten RTL blocks: the top-k engine (quick-select + zero eliminator + order-preserving filter)."""
