"""``memtest``: a scripted requester on a memory port, the test design of the fastbench memory model.

Why a design and not a Python driver: the memory model lives in the fastbench wrapper (HDL side), so the thing
that exercises it must be HDL too, and it must log *when* things happened so a test can compare every cycle with
:class:`attnforge.sim.memory.port.PortModel`. Its behaviour, cycle by cycle (``now`` counts cycles from reset):

* ``jobs`` beats (addr, len, tag, at) are loaded one at a time into a request register; a request is offered on
  ``mreq`` from cycle ``at`` on (``mreq.valid`` rises at ``max(at, load cycle)``); the next job loads in the same
  cycle the request is accepted, so requests can go back to back;
* every accepted request writes one ``acc`` beat (the cycle ``mreq.valid`` rose, the acceptance cycle, the tag);
  ``mreq.valid`` waits for ``acc.ready`` so no log beat is lost;
* every response beat is passed to ``beats`` with the cycle it was taken; ``mresp.ready`` is ``beats.ready``, so
  a stalling sink (``p_ready < 1``) holds the memory's beats, which tests the model's hold path.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import wiring

from attnforge.rtl.common import contract_ports, pack_value, view
from attnforge.sim.contract import designs as contract


class MemTest(wiring.Component):
    """Scripted memory requester with an event log (see the module docstring)."""

    def __init__(self, addr_bits: int = 8, data_bits: int = 16, len_bits: int = 4, tag_bits: int = 4,
                 cycle_bits: int = 16) -> None:
        self.contract = contract.memtest(addr_bits, data_bits, len_bits, tag_bits, cycle_bits)
        self.cycle_bits = cycle_bits
        super().__init__(contract_ports(self.contract))

    def elaborate(self, platform: object) -> Module:
        m = Module()
        c = self.contract
        now = Signal(self.cycle_bits)
        m.d.sync += now.eq(now + 1)
        job = Signal(c["jobs"].width)
        pending, shown = Signal(), Signal()
        since = Signal(self.cycle_bits)
        j = view(c["jobs"], job)
        want = pending & (now >= j.at)
        fire = self.mreq.valid & self.mreq.ready
        m.d.comb += [
            self.mreq.valid.eq(want & self.acc.ready),
            self.mreq.payload.eq(pack_value(c["mreq"], {"addr": j.addr, "len": j.len, "tag": j.tag})),
            self.jobs.ready.eq(~pending | fire),
            self.acc.valid.eq(fire),
            self.acc.payload.eq(pack_value(c["acc"], {"offered": Mux(shown, since, now), "accepted": now, "tag": j.tag})),
            self.beats.valid.eq(self.mresp.valid),
            self.mresp.ready.eq(self.beats.ready),
            self.beats.payload.eq(pack_value(c["beats"], {"cycle": now, **_fields(c["mresp"], self.mresp.payload)})),
        ]
        with m.If(want & ~shown):
            m.d.sync += [shown.eq(1), since.eq(now)]
        with m.If(fire):
            m.d.sync += [shown.eq(0), pending.eq(0)]
        with m.If(self.jobs.valid & self.jobs.ready):
            m.d.sync += [job.eq(self.jobs.payload), pending.eq(1)]
        return m


def _fields(layout: object, payload: object) -> dict[str, object]:
    v = view(layout, payload)  # type: ignore[arg-type]
    return {f.name: getattr(v, f.name) for f in layout.fields}  # type: ignore[attr-defined]
