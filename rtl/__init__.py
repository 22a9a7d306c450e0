"""Amaranth HDL for attnforge's attention blocks: MAC PE, 2D PE array, 1D vector unit, FuseMax tile engine.

Every block is an ``amaranth.lib.wiring.Component`` with ``amaranth.lib.stream`` ports whose payloads are flat
packed integers (lanes side by side, lane 0 in the low bits), so the exported Verilog has plain vector ports that
Icarus, Verilator and Yosys all accept. Their layouts come from the amaranth-free hardware contract
(:mod:`attnforge.sim.contract`), read by field name through :func:`attnforge.rtl.common.view`. The arithmetic mirrors
:mod:`attnforge.sim.fusemax.golden` bit for bit; :mod:`rtl.registry` names the designs for the CLI and :mod:`rtl.export` writes
Verilog plus a JSON manifest.
"""
