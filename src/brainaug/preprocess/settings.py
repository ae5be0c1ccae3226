"""Typed preprocessing settings, built from the config's ``preprocess`` section.

Defaults and bounds live in the schema (``config/schema.yaml``); this class only
names the fields the pipeline reads, so a test and the workflow build the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from brainaug.config import check_preprocess
from brainaug.settings import build_settings

__all__ = ["PreprocessSettings"]

#: ``skull_stripped`` values and what they force (None: detect per scan). YAML reads an
#: unquoted yes/no as a boolean, so both spellings mean the same.
_SKULL_CHOICES: dict[Any, bool | None] = {"auto": None, "yes": True, "no": False, True: True, False: False}


@dataclass(frozen=True)
class PreprocessSettings:
    """Preprocessing settings, built from the config's ``preprocess`` section.

    Attributes:
        image_size: S, voxels per axis of the output.
        n4: run N4 bias-field correction.
        n4_spacing_mm: N4 is fitted on the scan shrunk (averaged) to about this voxel size.
        n4_iterations: N4 maximum iterations per B-spline fitting level.
        n4_mask: ``"brain"`` (template brain mask pulled back after a first registration)
            or ``"head"`` (Otsu foreground, before registration).
        skull_stripped: ``"auto"`` (detect), ``"yes"``/``True`` or ``"no"``/``False``.
        stripped_max_volume_ml: auto-detection: a foreground (> 10 % of the robust
            intensity range) smaller than this many ml is a skull-stripped brain
            (brains are ~1.1-1.9 l; heads with skull 3-5 l).
        working_spacing_factor: working resolution = this x the finest output spacing
            (never finer than the input).
        registration_spacing_mm: voxel size of the template copy used as fixed image.
        registration_shrink_factors: multi-resolution shrink factors, coarse to fine.
        registration_smoothing_sigmas: per-level smoothing sigmas (voxels).
        registration_iterations: optimizer iterations per level.
        registration_sampling_percentage: fraction of fixed voxels sampled by Mattes MI.
        registration_histogram_bins: Mattes MI histogram bins.
        registration_refine_on_brain: refine the affine with the metric restricted to the
            template brain mask.
        registration_retries: registrations redone with the next sampling seeds when the
            template correlation ends below ``registration_retry_below`` (the best is kept).
        registration_retry_below: template correlation under which a registration is redone.
        intensity_percentiles: (low, high) percentiles inside the brain mapped to -1 and 1.
        threads: SimpleITK threads for this scan (1 for parallel Snakemake jobs).
        seed: seed of the registration's random sampling (deterministic output).
        assume_orientation: for a NIfTI without orientation only, the axis code to
            assume (``"RAS"``, ``"LPS"``...); ``None`` refuses such a file.
    """

    image_size: int
    n4: bool
    n4_spacing_mm: float
    n4_iterations: tuple[int, ...]
    n4_mask: str
    skull_stripped: str | bool
    stripped_max_volume_ml: float
    working_spacing_factor: float
    registration_spacing_mm: float
    registration_shrink_factors: tuple[int, ...]
    registration_smoothing_sigmas: tuple[float, ...]
    registration_iterations: int
    registration_sampling_percentage: float
    registration_histogram_bins: int
    registration_refine_on_brain: bool
    registration_retries: int
    registration_retry_below: float
    intensity_percentiles: tuple[float, float]
    threads: int
    seed: int
    assume_orientation: str | None = None

    @property
    def skull_stripped_choice(self) -> bool | None:
        """``None`` for auto-detection, else the forced answer."""
        return _SKULL_CHOICES[self.skull_stripped]

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> PreprocessSettings:
        """Build settings from the config's ``preprocess`` section, defaults and bounds from the schema.

        Raises:
            ValueError: unknown key or bad value (naming the key).
            TypeError: ``section`` is not a mapping, or a value has the wrong type.
        """
        return build_settings(cls, "preprocess", section, check=check_preprocess)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON view (lists instead of tuples), e.g. for metrics files."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
