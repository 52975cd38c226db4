"""The package's README.

What it computes (one network, or one network stage of a pipeline), then training, validation and citation.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from microrestore.bioimage.stages import StageExample, StageTensor
from microrestore.bioimage.tensors import INPUT_ID, OUTPUT_ID

if TYPE_CHECKING:
    from microrestore.bioimage.weights import Weights


def _metrics_text(metrics: dict[str, Any]) -> str:
    """``name value, ...`` of the numeric validation metrics (one level of nesting: per-network metrics)."""
    items = []
    for key, value in metrics.items():
        if isinstance(value, dict):
            items += [f"{key} {k} {v:.4g}" for k, v in value.items() if isinstance(v, (int, float))]
        elif isinstance(value, (int, float)):
            items.append(f"{key} {value:.4g}")
    return ", ".join(items)


def write_readme(path: Path, head: str, bundle: Any, citation: str, made_by: str) -> Path:
    """Write the README: ``head`` (title, what the package computes), then training, validation and citation."""
    text = f"""{head.rstrip()}

## Training

Trained by microrestore {bundle.provenance.get("microrestore", "?")} with torch {bundle.provenance.get("torch", "?")},
{bundle.provenance.get("steps", "?")} steps, seed {bundle.provenance.get("seed", "?")}.
Configuration: `{bundle.config}`.

# Validation

The test tensors were made by {made_by} and `bioimageio.core.test_model` passed on both weight formats before
this package was written. Validation metrics at the end of training: {_metrics_text(bundle.metrics) or "none recorded"}.

These numbers describe the training data only; check the model on your own images with ground truth
(`microrestore evaluate`) before trusting it on different microscopes, samples or noise levels.

## Citation

{citation}
"""
    path.write_text(text, encoding="utf-8")
    return path


def single_readme_head(
    *,
    name: str,
    method: str,
    bundle: Any,
    network: str,
    local: bool,
    units: str,
    normalization: dict[str, Any],
    halo: int,
    multiple: int,
    minimum: int,
    source: str,
) -> str:
    """The head of a single network's README: title, source, its input and output, tiling and units."""
    if units == "normalized":
        units_text = (
            f"**The output is in normalised units, not in the input's units.** The input is normalised per image "
            f"with its {normalization.get('low', 1.0)} and {normalization.get('high', 99.8)} percentiles "
            "(`scale_range`, `per_sample`), exactly as microrestore does. microrestore maps the network's output "
            "back with the same percentiles of the input (`output * (p_high - p_low) + p_low`); bioimage.io spec "
            "0.5 has no post-processing operator that multiplies by another tensor's percentiles, so this package "
            "leaves the output normalised: 0 is the input's low percentile, 1 its high percentile. To get the "
            f"input's units, apply that formula with the input image's percentiles; `microrestore restore --method "
            f"{method} --model this.zip` does it for you."
        )
    else:
        units_text = (
            "The output is in the input's units: a fixed affine normalisation (`scale_linear`), undone after the "
            "network, so intensities keep their meaning (no per-image stretching)."
        )
    if local:
        tiling_text = (
            f"A border of {halo} px (the network's receptive radius rounded up to {multiple}) is declared as halo: "
            "tiled prediction with that halo equals whole-image prediction."
        )
    else:
        tiling_text = (
            f"The network is not local (instance normalisation, attention or Fourier layers use statistics of the "
            f"whole input), so tiles see slightly different statistics than the whole image. The declared halo "
            f"({halo} px) covers the convolutions' reach and the smallest input is {minimum} px, so that tiles keep "
            "statistics close to the whole image's; prefer tiles as large as memory allows. microrestore blends "
            "overlapping tiles for the same reason."
        )
    return f"""# {name}

{method} model trained and exported with [microrestore](https://github.com/microrestore/microrestore)
(source: `{source}`). Network: {network}.

## Input and output

- Input `{INPUT_ID}`: one-channel image, axes batch, channel, {"z, " if bundle.axes == "ZYX" else ""}y, x; spatial
  sizes `{minimum} + n * {multiple}`.
- Output `{OUTPUT_ID}`: same shape. {tiling_text}
- {units_text}
"""


def stage_readme_head(
    *,
    title: str,
    method: str,
    network: str,
    role: str,
    example: StageExample,
    weights: Weights,
    local: bool,
    minimum: int,
    multiple: int,
    source: str,
) -> str:
    """The head of a network stage's README: what the stage is, its tensors, and the pipeline around it."""

    def tensor_line(kind: str, t: StageTensor) -> str:
        norm = (
            "The package min-max normalises it per sample over its channels and pixels (`scale_range`, "
            "percentiles 0 and 100) as the pipeline does."
            if t.minmax
            else "The package does not normalise it: give it exactly as described."
        )
        if kind == "Output":
            norm = "As the network gives it (no post-processing)."
        size = f", {t.scale} times the inputs' size (pixels {t.scale} times finer)" if t.scale != 1 else ""
        channels = ", ".join(f"`{c}`" for c in t.channels)
        axes = f"axes batch, channel ({len(t.channels)}: {channels}), y, x{size}"
        about = t.description.strip().rstrip(".").replace("see README", "see below")
        return f"- {kind} `{t.id}`: {axes}. {about[:1].upper()}{about[1:]}. {norm}"

    lines = [tensor_line("Input", t) for t in example.inputs] + [tensor_line("Output", example.output)]
    sizes = (
        f"y and x at least {minimum} px"
        + (f" (`{minimum} + n * {multiple}`)" if multiple > 1 else "")
        + (", the same for every input" if len(example.inputs) > 1 else "")
    )
    tiling = (
        "The network is not local (attention or Fourier layers use statistics of the whole input), so run it on "
        "whole frames, as the pipeline does: no halo is declared, so bioimageio.core runs the whole frame without "
        "padding, and tiles would give a different result."
        if not local
        else "No halo is declared: the pipeline runs the network on whole frames."
    )
    return f"""# {title}

**This package is one network stage of the {method} pipeline, not the whole method.** It holds the
`{network}` network ({role}), trained and exported with
[microrestore](https://github.com/microrestore/microrestore) (source: `{source}`): {weights.text()}.
{method} restores images with several steps of which only the networks can be bioimage.io models: the steps
before and after this one are not in this package, and a bioimage.io consumer must do them (see below). The
zip also carries the complete microrestore model folder (`config.yaml`, `weights.safetensors`: every network of
the pipeline), so `microrestore` runs the whole pipeline from it.

## Inputs and output

{chr(10).join(lines)}
- Sizes: {sizes}. {tiling}

## The {method} pipeline around this stage

{example.pipeline.strip()}
"""
