"""Amaranth HDL for attnforge's attention blocks: MAC PE, 2D PE array, 1D vector unit, FuseMax tile engine.

Every block is an ``amaranth.lib.wiring.Component`` with ``amaranth.lib.stream`` ports whose payloads are flat
packed integers (lanes side by side, lane 0 in the low bits; see :mod:`rtl.common`), so the exported Verilog
has plain vector ports that Icarus, Verilator and Yosys all accept. The arithmetic mirrors
:mod:`attnforge.sim.fusemax.golden` bit for bit; :mod:`rtl.registry` names the designs for the CLI and :mod:`rtl.export` writes
Verilog plus a JSON manifest.
"""
