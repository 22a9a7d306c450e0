"""The memory port of the whole-accelerator tops: request and response payloads, and the timing rules of the
memory model that answers them (in the testbench, in HDL) and that the cycle and analytical models predict.

Why one module: ``fusemax-top`` and ``spatten-top`` both fetch K/V (and Q, and write outputs back) through the same
kind of port, the testbench memory model serves both, and the simulator must model the same memory system. So the
payload layouts *and* the timing rules live here, amaranth-free, and every side reads them from here.

Payloads (:class:`MemPort`):

* ``mreq`` (design -> memory): ``addr`` (word address; one word = ``data_bits``) | ``len`` (beats, >= 1) | ``tag``.
* ``mresp`` (memory -> design): ``data`` (one word) | ``tag`` (the request's) | ``last`` (last beat of its request).

Timing rules (:class:`MemTiming`), exact, cycle numbers counted at rising edges:

1. A request handshakes at cycle ``t`` when ``mreq.valid & mreq.ready``. ``mreq.ready`` at cycle ``c`` is high iff
   fewer than ``outstanding`` earlier-accepted requests still occupy a slot at ``c``; a request occupies its slot
   from its acceptance cycle through the cycle of its last response beat (inclusive), so a slot frees the cycle
   after that beat.
2. Responses come back in request order, one beat per ``interval`` cycles at most (bandwidth =
   ``data_bits / interval`` bits per cycle). The first beat of request ``r`` is offered at
   ``max(t_r + latency, previous beat's cycle + interval)``; its later beats follow every ``interval`` cycles.
3. A design keeps ``mresp.ready`` high (it issues a request only when it can sink every beat of it); under that
   rule the beat cycles are a function of the request cycles alone, which is what the models compute. The HDL
   model still honours ``ready`` low (it holds the beat), but then the rules above give only a lower bound.

``latency >= 1``, ``outstanding >= 1``, ``interval >= 1``; ``len = 0`` is never issued.
"""

from __future__ import annotations

from dataclasses import dataclass

from attnforge.sim.contract.layout import Field, Layout, Struct, struct
from attnforge.sim.specs.errors import SpecError


@dataclass(frozen=True)
class MemPort:
    """The widths of one memory port."""

    addr_bits: int = 24
    data_bits: int = 64
    len_bits: int = 8
    tag_bits: int = 4

    def request(self) -> Struct:
        return struct("mreq", Field("addr", self.addr_bits), Field("len", self.len_bits), Field("tag", self.tag_bits))

    def response(self) -> Struct:
        return struct("mresp", Field("data", self.data_bits), Field("tag", self.tag_bits), Field("last", 1))

    @classmethod
    def of(cls, request: Layout, response: Layout) -> MemPort:
        """The widths a pair of stream layouts carries; refuses a pair that is not :meth:`request` /
        :meth:`response` (so a contract cannot name a memory port whose payload bits the memory model misreads)."""
        if not isinstance(request, Struct) or not isinstance(response, Struct):
            raise ValueError("a memory port's streams are structs (mreq, mresp)")
        try:
            mp = cls(addr_bits=request["addr"].width, data_bits=response["data"].width, len_bits=request["len"].width,
                     tag_bits=request["tag"].width)
        except KeyError as e:
            raise ValueError(f"not a memory port layout: {e}") from None
        if mp.request().to_json()["fields"] != request.to_json()["fields"] or \
                mp.response().to_json()["fields"] != response.to_json()["fields"]:
            raise ValueError("a memory port's layouts are MemPort.request() / MemPort.response(), field for field")
        return mp

    @property
    def max_len(self) -> int:
        return (1 << self.len_bits) - 1


@dataclass(frozen=True)
class MemTiming:
    """The memory model's timing: cycles from request to first beat, requests in flight, cycles per beat."""

    latency: int = 20
    outstanding: int = 4
    interval: int = 1

    def validate(self) -> MemTiming:
        for name, lo in (("latency", 1), ("outstanding", 1), ("interval", 1)):
            v = getattr(self, name)
            if not isinstance(v, int) or v < lo or v > 1 << 16:
                raise SpecError(f"memory.{name}", f"{v!r} is out of range", f"an integer in [{lo}, 65536]")
        return self
