"""Export a fitted model's embedder network to ONNX, and run a model through onnxruntime.

``oneclass export --model M --format onnx --out F`` writes:

- ``F`` (e.g. ``model.onnx``): the embedder's network, from the preprocessed image tensor
  ``images`` ``(n, 3, S, S)`` float32 to ``vectors`` ``(n, dim)``, with a dynamic batch axis;
- ``F`` with ``.json`` (``model.json``): what a server needs around it, without this package:
  the preprocessing (input size, crop, normalisation), the aggregation kind, and where the
  detector's state lives;
- ``F`` with ``.model/``: a copy of the saved model folder (detector state, calibration,
  threshold), JSON + npz, no pickle.

``oneclass score --model M --runtime onnx`` runs the same pipeline with the network in
onnxruntime (:class:`oneclass.embed.onnx_runtime.OnnxEmbedder`); the network is exported once
into the cache folder, keyed by the embedder's name, when the model folder has none.

Exportable: embedders with ``export_network()`` (EfficientNet-Lite0/2 and their fine-tuned
versions). Face embedders need their detector and aligner around the network and are refused
with that reason.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from pathlib import Path
from typing import Any

from oneclass.config import settings
from oneclass.embed.base import Embedder
from oneclass.embed.onnx_runtime import OnnxEmbedder
from oneclass.outputs import atomic_write_text, atomic_write_with

FORMAT_VERSION = 1
OPSET = 17


def export_network(embedder: Embedder) -> tuple[Any, Any]:
    """Returns ``(torch module, example input)`` of an exportable embedder.

    Raises:
        NotImplementedError: the embedder has no exportable network (the reason is given).
    """
    export = getattr(embedder, "export_network", None)
    if export is None:
        why = (
            "a face embedder needs its face detector and aligner around the network"
            if embedder.kind == "face"
            else "it has no export_network()"
        )
        raise NotImplementedError(f"{embedder.name}: cannot be exported to ONNX: {why}")
    return export()


def export_embedder(embedder: Embedder, path: str | Path, *, precision: str = "fp32") -> Path:
    """Write an embedder's network as an ONNX file (atomically).

    Args:
        embedder: an exportable embedder.
        path: the ``.onnx`` file to write.
        precision: ``"fp32"``, or ``"int8"`` (weights quantised with onnxruntime's dynamic
            quantisation after the fp32 export).

    Returns:
        The path written.
    """
    import torch

    module, example = export_network(embedder)
    target = Path(path)

    def write(tmp: Path) -> None:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                (example,),
                str(tmp),
                dynamo=False,
                opset_version=OPSET,
                input_names=["images"],
                output_names=["vectors"],
                dynamic_axes={"images": {0: "n"}, "vectors": {0: "n"}},
            )
        if precision == "int8":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            fp32 = tmp.with_name(tmp.name + ".fp32.onnx")
            tmp.replace(fp32)
            try:
                quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8)
            finally:
                fp32.unlink(missing_ok=True)

    return atomic_write_with(target, write)


def preprocessing_info(embedder: Embedder) -> dict[str, Any]:
    """Returns what a server must do to an image before the network (JSON)."""
    size = getattr(embedder, "image_size", None)
    return {
        "input": "images: float32 (n, 3, S, S), RGB, channels first",
        "image_size": size,
        "resize": "centre crop of S/(S+32) of the shorter side, bicubic resize to S x S",
        "normalise": "(pixel - 127) / 128",
        "embedder": embedder.name,
        "kind": embedder.kind,
    }


def export_model(model_dir: str | Path, out: str | Path, *, precision: str = "fp32") -> Path:
    """Export a saved pipeline for serving: network, preprocessing, detector state.

    Returns:
        The ``.onnx`` path written (its ``.json`` and ``.model/`` are beside it).
    """
    from oneclass.persist import load

    pipe = load(model_dir)
    embedder = pipe.embedder_
    out = Path(out)
    onnx_path = export_embedder(embedder, out, precision=precision)
    model_copy = out.with_suffix(".model")
    if model_copy.exists():
        if not (model_copy / "oneclass.json").is_file():
            raise FileExistsError(f"{model_copy}: exists and is not an exported model copy")
        shutil.rmtree(model_copy)
    shutil.copytree(model_dir, model_copy)
    info = {
        "format_version": FORMAT_VERSION,
        "onnx": onnx_path.name,
        "precision": precision,
        "preprocessing": preprocessing_info(embedder),
        "aggregation": embedder.kind,
        "detector_state": model_copy.name,
        "score": "higher = more in-class; threshold and calibration in the model copy",
    }
    atomic_write_text(out.with_suffix(".json"), json.dumps(info, indent=2) + "\n")
    return onnx_path


def onnx_pipeline(pipe: Any, *, precision: str = "fp32", threads: int | None = None) -> Any:
    """Switch a loaded pipeline's embedder to onnxruntime (exporting the network once).

    The network is taken from ``<cache>/onnx/<hash of the embedder name>-<precision>.onnx``,
    exported there on first use.

    Returns:
        The same pipeline object, scoring through onnxruntime.
    """
    base = pipe.embedder_
    key = hashlib.sha256(base.name.encode()).hexdigest()[:16]
    path = settings().cache_dir / "onnx" / f"{key}-{precision}.onnx"
    if not path.is_file():
        export_embedder(base, path, precision=precision)
    pipe.use_embedder(OnnxEmbedder(base, path, threads=threads, precision=precision))
    return pipe
