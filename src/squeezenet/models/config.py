"""The paper's design space as data: one `SqueezeNetConfig` describes any member of the family.

Section 5 of the paper generates the eight fire modules from five metaparameters; the stem and the
positions of the max pools complete the macroarchitecture, so v1.0 and v1.1 are just two named configs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from numbers import Integral, Real

from squeezenet.errors import ConfigError
from squeezenet.options import check, option

BYPASS_KINDS = ("none", "simple", "complex")


INIT_KINDS = ("paper", "torchvision")


NUM_FIRES = 8  # fire2 .. fire9


_TYPES = {"int": Integral, "float": Real, "bool": bool, "str": str, "tuple[int, ...]": (list, tuple), "dict": dict}


@dataclass(frozen=True)
class FireSpec:
    """One fire module: its name, input channels and the three filter counts."""

    name: str
    in_channels: int
    s1x1: int
    e1x1: int
    e3x3: int

    @property
    def out_channels(self) -> int:
        return self.e1x1 + self.e3x3


@dataclass(frozen=True)
class SqueezeNetConfig:
    """Metaparameters (Section 5), macroarchitecture (stem, pools, bypass) and training-time options.

    Defaults are SqueezeNet v1.0 exactly as Table 1.
    `pool_after` lists the layers followed by a 3x3/2 max pool: 1 is conv1, n >= 2 is fire n.
    `conv10_padding=1` is the Caffe variant of the authors' released weights.
    `final_relu=False` and `batch_norm=True` are the trainability variants offered by the training recipe.
    """

    base_e: int = option(128, low=1, high=65_536, help="expand filters of the first fire module (v1.0: 128)")
    incr_e: int = option(128, low=0, high=65_536, help="expand filters added every FREQ fire modules (v1.0: 128)")
    freq: int = option(2, low=1, high=8, help="fire modules between increments (v1.0: 2)")
    pct3x3: float = option(0.5, low=0.0, high=1.0, help="share of 3x3 filters in the expand layers (v1.0: 0.5)")
    sr: float = option(0.125, low=0.0, help="squeeze ratio SR (v1.0: 0.125; at most 1.0)")
    stem_filters: int = option(96, low=1, high=65_536, help="conv1 filters", cli=False)
    stem_kernel: int = option(7, low=1, high=31, help="conv1 kernel size", cli=False)
    stem_stride: int = option(2, low=1, high=16, help="conv1 stride", cli=False)
    pool_after: tuple[int, ...] = (1, 4, 8)
    bypass: str = option("none", choices=BYPASS_KINDS, help="bypass connections (Table 3)")
    num_classes: int = option(1000, low=1, high=100_000, help="number of output classes")
    dropout: float = option(0.5, low=0.0, high=0.99, help="dropout before conv10 (paper: 0.5)")
    conv10_padding: int = 0
    final_relu: bool = option(True, help="the ReLU after conv10 (the paper's)")
    batch_norm: bool = option(False, help="BatchNorm after every convolution")
    init: str = option("torchvision", choices=INIT_KINDS, help="weight initialization")
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._check_types()
        object.__setattr__(self, "pool_after", tuple(int(p) for p in self.pool_after))
        check(self)
        self.validate()

    def _check_types(self) -> None:
        """A value of the wrong type (from a file's header: "sr": "0.1", "batch_norm": "yes", "pool_after": "13")
        is a ConfigError naming it, not a crash or a silent truthiness further on."""
        for f in fields(self):
            value, kind = getattr(self, f.name), _TYPES[f.type]
            ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
            if f.name == "pool_after":
                ok = ok and all(isinstance(p, Integral) and not isinstance(p, bool) for p in value)
            if not ok:
                raise ConfigError(f"{f.name} must be of type {f.type}, got {value!r:.40}")

    def validate(self) -> None:
        """Raise ValueError naming the offending value for a configuration that cannot be built."""
        if not self.sr > 0:
            raise ConfigError(f"sr must be > 0, got {self.sr}")
        if not 0 < self.pct3x3 < 1:
            raise ConfigError(f"pct3x3 must be in (0, 1), got {self.pct3x3}")
        for name in ("base_e", "freq", "stem_filters", "stem_kernel", "stem_stride", "num_classes"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.incr_e < 0:
            raise ConfigError(f"incr_e must be >= 0, got {self.incr_e}")
        if self.bypass not in BYPASS_KINDS:
            raise ConfigError(f"unknown bypass kind {self.bypass!r}; choose one of {', '.join(BYPASS_KINDS)}")
        if self.init not in INIT_KINDS:
            raise ConfigError(f"unknown init {self.init!r}; choose one of {', '.join(INIT_KINDS)}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.conv10_padding not in (0, 1):
            raise ConfigError(f"conv10_padding must be 0 or 1, got {self.conv10_padding}")
        bad = [p for p in self.pool_after if not 1 <= p <= NUM_FIRES + 1]
        if bad or len(set(self.pool_after)) != len(self.pool_after):
            raise ConfigError(f"pool_after must name distinct layers 1..{NUM_FIRES + 1}, got {self.pool_after}")
        for f in self.fires():
            if min(f.s1x1, f.e1x1, f.e3x3) < 1:
                raise ConfigError(f"{f.name} would have a zero-width layer (s1x1={f.s1x1}, e1x1={f.e1x1}, "
                                 f"e3x3={f.e3x3}); raise base_e, sr or move pct3x3 away from 0/1")
            if f.s1x1 > f.out_channels:  # equality allowed: the paper's SR sweep ends at 1.0
                raise ConfigError(f"{f.name}: squeeze s1x1={f.s1x1} must not exceed expand "
                                 f"e1x1+e3x3={f.out_channels} (sr={self.sr} too large; at most 1.0)")

    def fires(self) -> list[FireSpec]:
        """The fire modules from the metaparameters: e_i = base_e + incr_e * floor(i / freq)."""
        specs, in_ch = [], self.stem_filters
        for i in range(NUM_FIRES):
            e = self.base_e + self.incr_e * math.floor(i / self.freq)
            e3 = int(round(self.pct3x3 * e))
            s = int(round(self.sr * e))
            specs.append(FireSpec(f"fire{i + 2}", in_ch, s, e - e3, e3))
            in_ch = e
        return specs

    def bypass_of(self, fire: FireSpec) -> str:
        """'identity', 'conv' or 'none' for one fire module under this config's bypass kind.

        Simple bypass needs matching channels (fire3/5/7/9 of v1.0); complex adds a 1x1 conv elsewhere.
        """
        if self.bypass == "none":
            return "none"
        if fire.in_channels == fire.out_channels:
            return "identity"
        return "conv" if self.bypass == "complex" else "none"

    def replace(self, **changes) -> SqueezeNetConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("extra")
        d["pool_after"] = list(self.pool_after)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SqueezeNetConfig:
        known = {f.name for f in fields(cls)} - {"extra"}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
        return cls(**d)


SQUEEZENET1_0 = SqueezeNetConfig()


SQUEEZENET1_1 = SqueezeNetConfig(stem_filters=64, stem_kernel=3, pool_after=(1, 3, 5))
