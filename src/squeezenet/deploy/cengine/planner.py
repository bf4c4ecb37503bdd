"""The static memory plan: every tensor's lifetime, one arena, an offset per tensor, decided at export time.

A tensor lives from the op that first writes it to the last op that reads it, so a Fire's input dies once its
squeeze is computed. In-place ops (max pool, bypass add) give their output their input's offset; a Fire's two
expand convolutions write the halves of one tensor; each convolution has a scratch block for the length of the op
(`graph.scratch_words`: its accumulators, one output channel's decoded entries, a fused max pool's plane); a tensor
a padded convolution reads is stored with its border. Offsets are found greedily by size (largest block first, at
the lowest offset free for its whole lifetime: TensorFlow Lite's "greedy by size"); the lower bound is the most
bytes live at any one op. `best_plan` fuses each max pool into its producers where that does not raise the arena
(conv1's, for v1.1 at 128 px, lowers it from 319 KB to 142 KB). `tflm_plan` plans the same network as a dense int8
runtime like TensorFlow Lite Micro would: every op's output a tensor of its own (concat copies, pools out of
place), no fusion, kernel scratch not counted. `stream_plan` runs the first stages streamed (`stream`: row by row,
one block of the arena while they run) and the rest layer by layer; `choose` picks among all such plans.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import combinations

from squeezenet.deploy.cengine.graph import INPUT, SCORES, Conv, Graph, Input, Shape, fusable, fuse, in_place, reads
from squeezenet.deploy.cengine.stream import Segment, macs, segment, stream_macs, streamable
from squeezenet.errors import SqueezeNetError

ALIGN = 16


@dataclass(frozen=True)
class Step:
    name: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    scratch: int = 0  # bytes, live during this step only


@dataclass
class Plan:
    graph: Graph
    offsets: dict[str, int]  # tensor, or "<op>/scratch", -> offset in the arena
    arena: int
    lower_bound: int
    rows: list[dict]  # per op: name, output, in use (bytes live), peak so far
    fused: tuple[str, ...] = ()
    stream: Segment | None = None  # the first ops, run row by row

    @property
    def streamed(self) -> int:
        """Stages run row by row."""
        return len(self.stream.stages) if self.stream else 0


def scratch_words(op: Conv, src: Shape) -> int:
    """The int32 words of `sqz_conv`'s scratch: the accumulators (one per stored input column of each output row),
    each weight position's input offset, the offsets and the 8-bit weights of one output channel's entries (twice
    the positions: AVX2 splits large weights; padded to a multiple of 4), then a fused max pool's plane."""
    taps = src.c * op.conv.kernel_size[0] ** 2
    room = -(-2 * taps // 4) * 4  # the AVX2 path may split every entry in two
    count = (op.out.h - 1) * src.cols + op.out.w
    return count + taps + room + room // 4 + (-(-op.out.plane // 4) if op.epilogue == "max" else 0)


def _scratch(graph: Graph, op) -> int:
    """Bytes an op needs while it runs: a convolution's words, the input's one RGB row read from the caller."""
    if isinstance(op, Conv):
        return 4 * scratch_words(op, graph.shapes[op.src])
    return 3 * graph.image_size if isinstance(op, Input) else 0


def _steps(graph: Graph, seg: Segment | None = None) -> tuple[list[Step], list[tuple[str, str]]]:
    ops = graph.ops[seg.ops:] if seg else graph.ops
    steps = [Step("stream", (), (seg.sink,) if seg.sink != SCORES else (), seg.size)] if seg else []
    steps += [Step(op.name, tuple(t for t in reads(op) if t != SCORES), (op.dst,) if op.dst != SCORES else (),
                   _scratch(graph, op)) for op in ops]
    return steps, [(op.dst, op.src) for op in ops if in_place(op)]


def _tflm_steps(graph: Graph) -> tuple[list[Step], list[tuple[str, str]]]:
    """Each expand writes a tensor of its own and a concat step copies both into the fire's output."""
    steps: list[Step] = []
    for op in graph.ops:
        halves = graph.writers(op.dst) if op.dst != SCORES else []
        if len(halves) > 1:
            steps.append(Step(op.name, tuple(reads(op)), (f"{op.name}:out",)))
            if op is halves[-1]:
                steps.append(Step(f"{op.dst}/concat", tuple(f"{w.name}:out" for w in halves), (op.dst,)))
        else:
            steps.append(Step(op.name, tuple(t for t in reads(op) if t != SCORES),
                              (op.dst,) if op.dst != SCORES else ()))
    return steps, []


def _size(graph: Graph, tensor: str, dense: bool) -> int:
    """Bytes stored; `dense`: as a runtime that pads on the fly stores it (no border, no phases)."""
    if tensor in graph.shapes:
        return replace(graph.shapes[tensor], border=0, phases=1).size if dense else graph.shapes[tensor].size
    op = next(o for o in graph.ops if f"{o.name}:out" == tensor)  # one expand's half, in the dense plan
    return op.out.size


def _blocks(graph: Graph, steps: list[Step], aliases: list[tuple[str, str]],
            dense: bool) -> list[list[tuple[str, int, int, int]]]:
    """Groups of (name, bytes, first step, last step) that share one offset: a tensor with its in-place outputs."""
    span: dict[str, list[int]] = {}
    for i, s in enumerate(steps):
        for t in s.writes + s.reads:
            span.setdefault(t, [i, i])[1] = i
    root = {t: t for t in span}
    for dst, src in aliases:
        root[dst] = root[src]
    for t in root:
        while root[root[t]] != root[t]:
            root[t] = root[root[t]]
    groups: dict[str, list] = {}
    for t, (a, b) in span.items():
        groups.setdefault(root[t], []).append((t, _size(graph, t, dense), a, b))
    groups |= {f"{s.name}/scratch": [(f"{s.name}/scratch", s.scratch, i, i)] for i, s in enumerate(steps) if s.scratch}
    return list(groups.values())


def _place(groups: list[list[tuple[str, int, int, int]]]) -> dict[str, int]:
    placed: list[tuple[int, int, int, int]] = []  # offset, bytes, first, last
    offsets: dict[str, int] = {}
    for group in sorted(groups, key=lambda g: -max(b[1] for b in g)):
        near = [p for p in placed if any(p[2] <= b[3] and b[2] <= p[3] for b in group)]
        for start in sorted({0, *(-(-(p[0] + p[1]) // ALIGN) * ALIGN for p in near)}):
            if all(start + b[1] <= p[0] or p[0] + p[1] <= start for b in group for p in near
                   if p[2] <= b[3] and b[2] <= p[3]):
                break
        for name, size, a, b in group:
            offsets[name] = start
            placed.append((start, size, a, b))
    return offsets


def _plan(graph: Graph, steps: list[Step], aliases: list[tuple[str, str]], dense: bool = False) -> Plan:
    groups = _blocks(graph, steps, aliases, dense)
    offsets = _place(groups)
    rows, peak = [], 0
    for i, s in enumerate(steps):
        live = sum(max((b[1] for b in g if b[2] <= i <= b[3]), default=0) for g in groups)
        peak = max(peak, live)
        out = s.writes[0] if s.writes else SCORES
        rows.append({"name": s.name, "output": str(graph.shapes[out]) if out in graph.shapes else "",
                     "in_use": live, "peak": peak})
    arena = max((offsets[b[0]] + b[1] for g in groups for b in g), default=0)
    return Plan(graph, offsets, -(-arena // ALIGN) * ALIGN, peak, rows)


def plan(graph: Graph, stages: int = 0) -> Plan:
    """Layer by layer, or with the first `stages` stages of `stream.streamable` streamed."""
    seg = segment(graph, stages) if stages else None
    p = _plan(graph, *_steps(graph, seg))
    p.stream = seg
    return p


def tflm_plan(graph: Graph) -> Plan:
    return _plan(graph, *_tflm_steps(graph), dense=True)


def plans(graph: Graph, stream: bool = True) -> list[Plan]:
    """Every plan: each choice of max pools to fuse, each with each number of leading stages streamed (a streamed
    pool is fused)."""
    pools, out = fusable(graph), []
    for n in range(len(pools) + 1):
        for chosen in combinations(pools, n):
            g = fuse(graph, set(chosen))
            for stages in range(len(streamable(g)) + 1 if stream else 1):
                p = plan(g, stages)
                p.fused = chosen
                out.append(p)
    return out


def best_plan(graph: Graph) -> Plan:
    """Layer by layer: the smallest arena over every choice of max pools to fuse; on a tie the most fusions (a
    fused pool saves a pass over its input)."""
    return min(reversed(plans(graph, stream=False)), key=lambda p: p.arena)


def smallest_plan(graph: Graph) -> Plan:
    """The smallest arena of all plans; on a tie the fewest stages streamed (each decodes its weights per row)."""
    return min(plans(graph), key=lambda p: (p.arena, p.streamed, -len(p.fused)))


class NoPlan(SqueezeNetError):
    """No plan fits the budget; `need` is the smallest arena of any."""

    def __init__(self, message: str, need: int) -> None:
        super().__init__(message)
        self.need = need


def choose(graph: Graph, arena: int | None = None, how: str = "fit") -> Plan:
    """`fit`: the fewest stages streamed whose arena is at most `arena` bytes (the smallest on a tie); `layers`:
    layer by layer; `stream`: the smallest. A budget no plan meets is a one-line error naming the smallest."""
    if how == "layers":
        chosen = best_plan(graph)
    elif how == "stream":
        chosen = smallest_plan(graph)
    else:
        fits = [p for p in plans(graph) if arena is None or p.arena <= arena]
        chosen = min(fits, key=lambda p: (p.streamed, p.arena, -len(p.fused))) if fits else None
    if chosen is None or arena is not None and chosen.arena > arena:
        need = smallest_plan(graph).arena if chosen is None or how != "layers" else chosen.arena
        raise NoPlan(f"no {'layer-by-layer ' if how == 'layers' else ''}memory plan fits an arena of {arena:,} "
                     f"bytes: the smallest needs {need:,}", need)
    return chosen


def plan_macs(p: Plan) -> int:
    """The MACs the plan's execution makes: its streamed rows (`stream.schedule`) and its layers run whole."""
    if p.stream is None:
        return macs(p.graph)
    return stream_macs(p.stream) + macs(p.graph, p.graph.ops[p.stream.ops:])


def format_plan(p: Plan, dense: Plan | None = None) -> str:
    """Per op the bytes in use and the peak so far, then the arena (for `squeezenet summary --memory`)."""
    head = f"{'op':<22}{'output':>14}{'in use':>12}{'peak':>12}"
    lines = [head, "-" * len(head)]
    lines += [f"{r['name']:<22}{r['output']:>14}{r['in_use']:>12,}{r['peak']:>12,}" for r in p.rows]
    g = p.graph
    lines += ["-" * len(head),
              f"arena {p.arena:,} bytes at {g.image_size}x{g.image_size} (lower bound: {p.lower_bound:,} live at "
              f"once); input {g.shapes[INPUT]} converted in the arena; fused max pools: "
              f"{', '.join(p.fused) or 'none'}"]
    if dense is not None:
        lines.append(f"a dense int8 runtime (TensorFlow Lite Micro style: concat copies, pools out of place, no "
                     f"fusion, scratch not counted): arena {dense.arena:,} bytes")
    return "\n".join(lines)
