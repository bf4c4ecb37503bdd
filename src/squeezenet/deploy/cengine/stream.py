"""Streaming execution: a chain of layers run row by row, depth first, so that no map of the chain exists whole.

Each stage (a convolution, a Fire's squeeze, a Fire's two expands writing the halves of one row; a max pool fused
into the stage that makes its input) keeps only the rows of its input its kernel still needs: a ring of
`reach + pad + 1` rows (three for a 3x3 of padding 1, seven for v1.0's 7x7/2 stem, one for a 1x1). When a row
arrives, the stage makes every output row it now can and hands each down the chain before making the next. A fused
max pool keeps one pooled row under construction (the column maxima of the rows seen so far). A one-row ring
without a border lives only while its producer writes it and its reader reads it, so such rings share two buffers
(alternating along the chain). The input arrives as rows from the caller. Nothing is computed twice: every output
row of every stage is made once (`schedule` replays the C's order and checks it), so the MACs equal the
layer-by-layer engine's. The cost is that each stage decodes its compressed weights once per output row instead of
once per image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from squeezenet.deploy.cengine.graph import INPUT, SCORES, Conv, Graph, Input, Op, Shape
from squeezenet.models.squeezenet import pool_out

ALIGN = 16


def _up(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


@dataclass(frozen=True)
class Ring:
    """Rows of a tensor kept in the arena: `slots` rows, each all its channels of `cols` stored columns (the border
    the readers' padding needs on each side, in `phases` column phases for a strided reader)."""

    tensor: str
    shape: Shape
    slots: int

    @property
    def row_bytes(self) -> int:
        return self.shape.c * self.shape.phases * self.shape.cols

    @property
    def size(self) -> int:
        return self.slots * self.row_bytes

    @property
    def shared(self) -> bool:
        """One row, no border: dead once its reader has made its output row."""
        return self.slots == 1 and self.shape.border == 0


@dataclass(frozen=True)
class Stage:
    convs: tuple[Conv, ...]  # one, or a Fire's two expands (same input, the two halves of one output row)
    ring: Ring  # its input rows
    stride: int
    reach: int  # output row y needs input rows up to stride * y + reach

    @property
    def in_h(self) -> int:
        return self.ring.shape.h

    @property
    def out_h(self) -> int:
        return self.convs[0].out.h

    @property
    def pool(self) -> int:
        """Bytes of the pooled row under construction (a fused max pool), 0 without one."""
        c = self.convs[0]
        return 0 if c.epilogue != "max" else sum(x.out.c for x in self.convs) * self.pooled_w

    @property
    def pooled_w(self) -> int:
        return pool_out(self.convs[0].out.w)


def scratch_words(op: Conv, ring: Ring) -> int:
    """`sqz_stream`'s scratch for one output row: the accumulators, each weight position's offset, the offsets and
    weights of one output channel's entries (doubled: AVX2 splits large weights), the requantized row a fused pool
    reads."""
    taps = ring.shape.c * op.conv.kernel_size[0] ** 2
    room = -(-2 * taps // 4) * 4
    return op.out.w + taps + room + room // 4 + (-(-op.out.w // 4) if op.epilogue == "max" else 0)


@dataclass
class Segment:
    """The streamed chain: its stages, where each buffer sits in its block of the arena, and the tensor its last
    stage writes whole (or SCORES)."""

    stages: list[Stage]
    sink: str
    ops: int  # how many of the graph's ops (from the input) it runs
    offsets: dict[str, int] = field(default_factory=dict)  # "ring:<tensor>", "pool:<stage>", "shared0/1", "scratch"
    size: int = 0

    def ring_offset(self, stage: Stage) -> int:
        if stage.ring.shared:
            return self.offsets[f"shared{self.stages.index(stage) % 2}"]
        return self.offsets[f"ring:{stage.ring.tensor}"]


def _stage(graph: Graph, convs: list[Conv]) -> Stage:
    shape = graph.shapes[convs[0].src]
    stride = convs[0].conv.stride[0]
    reach = max(c.conv.kernel_size[0] - 1 - c.conv.padding[0] for c in convs)
    pad = max(c.conv.padding[0] for c in convs)
    return Stage(tuple(convs), Ring(convs[0].src, shape, reach + pad + 1), stride, reach)


def streamable(graph: Graph) -> list[list[Conv]]:
    """The longest chain of stages from the input that can stream, as groups of convolutions: a stage reads the
    tensor only the stage before it makes, writes it only for the stage after it, and pools only as a fused pool
    (a bypass, an unfused pool or a shortcut ends the chain)."""
    ops = list(graph.ops)
    if not isinstance(ops[0], Input):
        return []
    groups: list[list[Conv]] = []
    i, src = 1, INPUT
    while i < len(ops) and isinstance(ops[i], Conv) and ops[i].src == src:
        group = [ops[i]]
        while i + len(group) < len(ops) and isinstance(ops[i + len(group)], Conv) and \
                ops[i + len(group)].src == src and ops[i + len(group)].dst == group[0].dst:
            group.append(ops[i + len(group)])
        dst = group[0].dst
        readers = [o for o in ops if getattr(o, "src", None) == src or getattr(o, "other", None) == src]
        writers = graph.writers(dst) if dst != SCORES else group
        if len(readers) != len(group) or writers != group or len({c.epilogue for c in group}) != 1:
            break
        groups.append(group)
        i += len(group)
        src = dst
        if dst == SCORES:
            break
    return groups


def segment(graph: Graph, count: int) -> Segment:
    """The first `count` stages of `streamable(graph)` as one streamed segment, its buffers laid out."""
    groups = streamable(graph)[:count]
    stages = [_stage(graph, g) for g in groups]
    seg = Segment(stages, groups[-1][0].dst, 1 + sum(len(g) for g in groups))
    at = 0
    for i, s in enumerate(stages):
        if not s.ring.shared:
            seg.offsets[f"ring:{s.ring.tensor}"] = at
            at += _up(s.ring.size)
        if s.pool:
            seg.offsets[f"pool:{i}"] = at
            at += _up(s.pool)
    for parity in (0, 1):
        seg.offsets[f"shared{parity}"] = at
        at += _up(max((s.ring.size for i, s in enumerate(stages) if s.ring.shared and i % 2 == parity), default=0))
    seg.offsets["scratch"] = at
    words = max(scratch_words(c, s.ring) for s in stages for c in s.convs)
    at += _up(max(4 * words, 3 * graph.image_size))  # the image's RGB row is read in before any stage runs
    seg.size = at
    return seg


def schedule(seg: Segment) -> list[tuple[int, int]]:
    """(stage, output row) in the order the C makes them, each checked to find its input rows in its ring."""
    done = [0] * len(seg.stages)
    held: list[dict[int, int]] = [{} for _ in seg.stages]  # slot -> the row it holds
    order: list[tuple[int, int]] = []

    def arrive(i: int, r: int) -> None:
        s = seg.stages[i]
        held[i][(r + s.ring.shape.border) % s.ring.slots] = r

    def push(i: int, r: int) -> None:
        if i == len(seg.stages):
            return
        s = seg.stages[i]
        if r >= 0:
            arrive(i, r)
        last = r == s.in_h - 1
        filled = r
        while done[i] < s.out_h:
            y = done[i]
            top = s.stride * y + s.reach
            if top > r and not last:
                break
            while filled < top:  # the bottom padding rows
                filled += 1
                arrive(i, filled)
            for c in s.convs:
                pad = c.conv.padding[0]
                for row in range(s.stride * y - pad, s.stride * y - pad + c.conv.kernel_size[0]):
                    got = held[i].get((row + s.ring.shape.border) % s.ring.slots, row if row < 0 else None)
                    if got != row:
                        raise AssertionError(f"{c.name}: row {y} needs input row {row}, its ring holds {got}")
            order.append((i, y))
            done[i] += 1
            out = _pooled(s, y)
            if out is not None:
                push(i + 1, out)

    for i in reversed(range(len(seg.stages))):
        push(i, -1)  # rows that need only the top padding
    for r in range(seg.stages[0].in_h):
        push(0, r)
    return order


def _pooled(s: Stage, y: int) -> int | None:
    """The row handed down after output row y: y itself, or with a fused 3x3/2 pool the pooled row it completes."""
    if not s.pool:
        return y
    if y >= 2 and y % 2 == 0:
        return y // 2 - 1
    if y % 2 == 1 and y == s.out_h - 1:
        return (y - 1) // 2
    return None


def macs(graph: Graph, ops: tuple[Op, ...] | None = None) -> int:
    """Multiply-accumulates of the dense network (every weight, zeros too) over the convolutions' outputs."""
    return sum(_row_macs(op) * op.out.h for op in (graph.ops if ops is None else ops) if isinstance(op, Conv))


def _row_macs(op: Conv) -> int:
    return op.out.c * op.conv.in_channels * op.conv.kernel_size[0] ** 2 * op.out.w


def stream_macs(seg: Segment) -> int:
    """The MACs of the rows `schedule` makes: equal to `macs` of the same layers when no row is made twice."""
    return sum(sum(_row_macs(c) for c in seg.stages[i].convs) for i, _ in schedule(seg))


def stage_rows(seg: Segment) -> list[dict]:
    """Per stage: its layers, the rows of its input it keeps and their bytes, the pooled row it builds."""
    return [{"stage": " + ".join(c.name for c in s.convs) + (" + max pool" if s.pool else ""),
             "input": str(s.ring.shape), "rows_kept": s.ring.slots, "bytes": s.ring.size,
             "shared": s.ring.shared, "pool_bytes": s.pool} for s in seg.stages]


def format_segment(seg: Segment) -> str:
    head = f"{'stage':<44}{'input':>12}{'rows kept':>11}{'bytes':>10}"
    lines = [head, "-" * len(head)]
    for r in stage_rows(seg):
        kept = f"{r['rows_kept']}{' (shared)' if r['shared'] else ''}"
        lines.append(f"{r['stage']:<44}{r['input']:>12}{kept:>11}{r['bytes'] + r['pool_bytes']:>10,}")
    return "\n".join(lines)
