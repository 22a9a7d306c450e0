"""Amaranth HDL for the accelerators' blocks (see the FuseMax RTL issue); empty until that lands."""
