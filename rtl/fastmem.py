"""The fastbench memory model: the Verilog that answers a design's memory port (``mreq`` / ``mresp``) inside the
``fb_top`` wrapper of :mod:`attnforge.rtl.fastbench`, following :class:`attnforge.sim.contract.memport.MemTiming`.

Why generated Verilog and not a cocotb coroutine: a whole-layer run is millions of cycles, and a memory answered
from Python would wake Python every cycle (the cost fastbench exists to avoid). The model, per port ``p``:

* a word array ``p_mem`` (``data_bits`` wide) preloaded by ``$readmemh("p.mem.hex")``; a beat of a request at
  ``addr`` reads word ``(addr + i) mod 2**addr_bits``, and a word past the preloaded ones reads 0;
* a request queue of ``outstanding`` entries (address, length, tag, due cycle = acceptance + ``latency``);
  ``mreq.ready`` is high while fewer than ``outstanding`` requests are in flight (accepted, last beat not yet
  taken) -- rule 1: a slot frees the cycle after its last beat;
* the head request's beats are offered in order from ``max(due, previous beat + interval)`` -- rule 2; a beat not
  taken (``mresp.ready`` low) is held, unchanged, and the next one waits ``interval`` cycles after it is taken;
* counters of accepted requests and delivered beats, dumped at ``done`` as two 64-bit words into
  ``p.stats.hex`` (requests, beats), so benches can report the memory traffic.

Plain Verilog-2005 (arrays, one clocked block), read by Icarus and Verilator alike.
"""

from __future__ import annotations

from attnforge.sim.contract.memport import MemPort, MemTiming


def memport_rtl(p: str, mp: MemPort, timing: MemTiming, depth: int) -> str:
    """Port ``p``'s memory model: drives ``p_req_ready``, ``p_resp_valid`` and ``p_resp_payload``; reads
    ``p_req_valid``, ``p_req_payload`` (from the DUT) and ``p_resp_ready`` (to the DUT), and the wrapper's ``rst``."""
    t = timing.validate()
    a, d, ln, tg, n = mp.addr_bits, mp.data_bits, mp.len_bits, mp.tag_bits, t.outstanding
    return f"""  // memory port {p}: {mp}, {t}
  reg [{d - 1}:0] {p}_mem [0:{max(depth, 1) - 1}];
  initial $readmemh("{p}.mem.hex", {p}_mem);
  reg [63:0] {p}_stats [0:1];
  initial begin {p}_stats[0] = 0; {p}_stats[1] = 0; end
  reg [63:0] {p}_now = 0;
  reg [{a - 1}:0] {p}_qaddr [0:{n - 1}];
  reg [{ln - 1}:0] {p}_qlen [0:{n - 1}];
  reg [{tg - 1}:0] {p}_qtag [0:{n - 1}];
  reg [63:0] {p}_qdue [0:{n - 1}];
  reg [31:0] {p}_wp = 0, {p}_rp = 0, {p}_inflight = 0;
  reg [{ln - 1}:0] {p}_bi = 0;
  reg [63:0] {p}_next = 0;
  wire {p}_req_valid;
  wire [{a + ln + tg - 1}:0] {p}_req_payload;
  wire {p}_req_ready = !rst && ({p}_inflight < {n});
  wire {p}_req_fire = {p}_req_valid && {p}_req_ready;
  wire [{a - 1}:0] {p}_raddr = {p}_qaddr[{p}_rp] + {p}_bi;
  wire [{d - 1}:0] {p}_rdata = ({p}_raddr < {depth}) ? {p}_mem[{p}_raddr] : {d}'d0;
  wire {p}_rlast = ({{1'b0, {p}_bi}} + 1'b1 >= {{1'b0, {p}_qlen[{p}_rp]}});
  wire {p}_resp_valid = !rst && ({p}_inflight != 0) && ({p}_now >= {p}_qdue[{p}_rp]) && ({p}_now >= {p}_next);
  wire [{d + tg}:0] {p}_resp_payload = {{{p}_rlast, {p}_qtag[{p}_rp], {p}_rdata}};
  wire {p}_resp_ready;
  wire {p}_resp_fire = {p}_resp_valid && {p}_resp_ready;
  always @(posedge clk) begin
    {p}_now <= {p}_now + 1;
    if ({p}_req_fire) begin
      {p}_qaddr[{p}_wp] <= {p}_req_payload[{a - 1}:0];
      {p}_qlen[{p}_wp] <= {p}_req_payload[{a + ln - 1}:{a}];
      {p}_qtag[{p}_wp] <= {p}_req_payload[{a + ln + tg - 1}:{a + ln}];
      {p}_qdue[{p}_wp] <= {p}_now + {t.latency};
      {p}_wp <= ({p}_wp == {n - 1}) ? 0 : {p}_wp + 1;
      {p}_stats[0] <= {p}_stats[0] + 1;
    end
    if ({p}_resp_fire) begin
      {p}_next <= {p}_now + {t.interval};
      {p}_stats[1] <= {p}_stats[1] + 1;
      if ({p}_rlast) begin {p}_bi <= 0; {p}_rp <= ({p}_rp == {n - 1}) ? 0 : {p}_rp + 1; end
      else {p}_bi <= {p}_bi + 1;
    end
    {p}_inflight <= {p}_inflight + {{31'd0, {p}_req_fire}} - {{31'd0, {p}_resp_fire && {p}_rlast}};
  end
"""


def memport_conns(p: str, req: str, resp: str) -> list[str]:
    """The DUT port connections of memory port ``p`` (request stream ``req``, response stream ``resp``)."""
    return [f".{req}__valid({p}_req_valid)", f".{req}__ready({p}_req_ready)", f".{req}__payload({p}_req_payload)",
            f".{resp}__valid({p}_resp_valid)", f".{resp}__ready({p}_resp_ready)", f".{resp}__payload({p}_resp_payload)"]


def memory_hex(words: list[int], data_bits: int) -> str:
    """``$readmemh`` text of a memory's preloaded words (one zero word when empty: an array has at least one)."""
    digits = (data_bits + 3) // 4
    mask = (1 << data_bits) - 1
    return "".join(f"{w & mask:0{digits}x}\n" for w in words) or "0\n"
