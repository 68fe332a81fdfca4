"""Text towers on ONNX Runtime, so a one-shot query never imports torch.

Importing torch and transformers takes seconds; answering a query takes milliseconds.
When an encoder has loaded its torch model for a batch (indexing), it exports its
text tower once into a cache directory keyed by the model's files; later queries
find it there and run it with ``onnxruntime`` and the ``tokenizers`` library::

    tower = OnnxTextTower.find(cache_root, model_key(model_dir))   # None when not exported
    vectors = tower.encode(["a red bicycle"]) if tower else ...

Exported graphs are checked against torch when written (cosine >= PARITY) and
discarded when they fall short. Nothing here imports torch at module level.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmrag.errors import DependencyError

__all__ = [
    "INT8_AGREEMENT",
    "PARITY",
    "OnnxTextTower",
    "export_clip_text",
    "export_tower",
    "model_key",
]

#: Least cosine between the ONNX and torch vectors of the check texts to keep an export.
PARITY = 0.9999
#: Least cosine between an int8 tower's vectors and its fp32 tower's to keep the int8 one
#: (opt-in ``precision="int8"``; random ViT-B/32 weights gave 0.9994-0.9996 here).
INT8_AGREEMENT = 0.999
_log = logging.getLogger(__name__)
#: A tower's graphs: fp32, int8 (made on first int8 use), and the mark of a refused int8 one.
_FP32 = "model.onnx"
_INT8 = "model.int8.onnx"
_REFUSED = "int8-refused.txt"
_QUANTIZE_LOCK = threading.Lock()
_FORMAT = 1  # bump when the exported graph or its files change
_CHECK_TEXTS = ["a red bicycle", "Quarterly revenue grew 12% to $4.1 billion in fiscal 2022."]


def model_key(directory: Path, kind: str) -> str:
    """A cache key for the model files in ``directory``: their names, sizes and mtimes."""
    h = hashlib.sha256(f"{_FORMAT}:{kind}:{directory.resolve()}".encode())
    for path in sorted(directory.glob("*")):
        if path.is_file():
            stat = path.stat()
            h.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return f"{kind}-{h.hexdigest()[:20]}"


class OnnxTextTower:
    """One exported text tower: ``model.onnx`` + ``tokenizer.json`` + ``tower.json``.

    ``int8`` runs ``model.int8.onnx`` instead, the linear layers' weights quantised to 8 bits
    (see :func:`quantize_tower`): a query reads a quarter of the weight bytes, which is what a
    short query's time goes on (CLIP ViT-B/32: 151 MB of fp32 weights, 12-19 ms here).
    """

    def __init__(self, directory: Path, *, int8: bool = False) -> None:
        self.directory = directory
        self.int8 = int8
        meta = json.loads((directory / "tower.json").read_text())
        self.max_length = int(meta["max_length"])
        #: Whether ``model.onnx`` was saved optimised (older caches hold the plain export).
        self.optimised = bool(meta.get("optimised", False))
        self._session: Any = None
        self._tokenizer: Any = None
        self._prepacked = False
        self._calls = 0
        self._lock = threading.Lock()

    @classmethod
    def find(cls, root: Path, key: str, *, int8: bool = False) -> OnnxTextTower | None:
        """The tower cached under ``root/key``, or None when absent or onnxruntime is missing.

        With ``int8`` the quantised tower, made from the fp32 one on first use; the fp32
        tower when it cannot be made or falls short of INT8_AGREEMENT.
        """
        directory = root / key
        if not (directory / "tower.json").is_file():
            return None
        try:
            import onnxruntime  # noqa: F401
            import tokenizers  # noqa: F401
        except ImportError:
            return None
        if int8 and not (directory / _INT8).is_file() and not (directory / _REFUSED).is_file():
            try:
                agreement = quantize_tower(directory)
            except Exception as exc:  # an optimisation: the fp32 tower still answers
                _log.warning("int8 text tower in %s not made: %s", directory, exc)
                agreement = 0.0
            if agreement < INT8_AGREEMENT:
                _log.warning("int8 text tower in %s: agreement %.5f too low", directory, agreement)
        return cls(directory, int8=int8 and (directory / _INT8).is_file())

    def _load(self) -> tuple[Any, Any]:
        """The session and tokenizer for this call.

        The first call gets a session that skips weight prepacking: it starts 3-4x faster
        (0.2 against 0.7 s for the CLIP text tower here) but runs 3x slower, which is the
        right trade for a process that asks one query. The second call replaces it by a
        prepacked session, which every later query in a long-lived process uses.
        """
        with self._lock:
            self._calls += 1
            if self._tokenizer is None:
                from tokenizers import Tokenizer

                tokenizer = Tokenizer.from_file(str(self.directory / "tokenizer.json"))
                tokenizer.enable_truncation(self.max_length)
                tokenizer.no_padding()
                self._tokenizer = tokenizer
            if self._session is None or (self._calls == 2 and not self._prepacked):
                import onnxruntime as ort

                self._prepacked = self._calls > 1
                self._session = _session(
                    ort,
                    self.directory,
                    optimised=self.optimised or self.int8,  # int8 graphs are saved optimised
                    prepack=self._prepacked,
                    model=_INT8 if self.int8 else _FP32,
                )
        return self._session, self._tokenizer

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Texts -> float32 (N, dim), L2-normalised; one text per run, so nothing is padded."""
        session, tokenizer = self._load()
        return _run(session, tokenizer, texts)


def _run(session: Any, tokenizer: Any, texts: Sequence[str]) -> np.ndarray:
    """``texts`` through a tower's session one at a time, L2-normalised float32 rows."""
    rows = []
    for text in texts:
        ids = np.asarray([tokenizer.encode(text).ids], dtype=np.int64)
        (out,) = session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
        rows.append(np.asarray(out[0], dtype=np.float32))
    vecs = np.stack(rows)
    return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)


def _session(
    ort: Any,
    directory: Path,
    *,
    optimised: bool,
    prepack: bool = True,
    save: Path | None = None,
    model: str = _FP32,
) -> Any:
    """An ONNX Runtime session on the tower's ``model.onnx``.

    Optimising a graph is most of a session's start-up (0.36 of 0.55 s for the CLIP text
    tower here), which a one-shot query would pay every time; so an export saves the graph
    already optimised (``save``; the parity check runs on that graph) and loads of an
    ``optimised`` graph skip the step. The extended level only: the "all" level may write
    layouts particular to this CPU, and a cache may be shared.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # a query: one thread beats two fighting a load
    options.log_severity_level = 3
    if not prepack:
        options.add_session_config_entry("session.disable_prepacking", "1")
    level = ort.GraphOptimizationLevel
    if optimised:
        options.graph_optimization_level = level.ORT_DISABLE_ALL
    elif save is not None:
        options.graph_optimization_level = level.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(save)
    source = str(directory / model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def quantize_tower(directory: Path) -> float:
    """Write ``model.int8.onnx`` beside a tower's fp32 graph: ONNX Runtime's dynamic
    quantisation of the MatMul weights (int8, per output channel; activations quantised per
    call). Kept only when its vectors of the check texts agree with the fp32 tower's to
    INT8_AGREEMENT (cosine); returns that agreement."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _QUANTIZE_LOCK:
        if (directory / _INT8).is_file():
            return 1.0
        fd, name = tempfile.mkstemp(prefix=".int8-", suffix=".onnx", dir=directory)
        os.close(fd)
        work = Path(name)
        # The quantiser logs advice on the root logger ("consider pre-processing"): not ours.
        quiet = _Drop("pre-processing before quantization")
        logging.getLogger().addFilter(quiet)
        try:
            quantize_dynamic(
                directory / _FP32,
                work,
                weight_type=QuantType.QInt8,
                per_channel=True,
                # The saved graph holds ONNX Runtime's fused ops, which shape inference
                # cannot type: their outputs are float.
                extra_options={"DefaultTensorType": 1},
            )
            import onnxruntime as ort

            tower = OnnxTextTower(directory)
            fp32 = tower.encode(_CHECK_TEXTS)
            # Optimised as it is saved (fusing the quantise/matmul pairs), like the fp32 graph.
            optimised = work.with_suffix(".opt")
            _session(ort, directory, optimised=False, save=optimised, model=work.name)
            os.replace(optimised, work)
            got = _run(
                _session(ort, directory, optimised=True, model=work.name),
                tower._tokenizer,
                _CHECK_TEXTS,
            )
            agreement = float(np.min(np.sum(fp32 * got, axis=1)))
            if agreement >= INT8_AGREEMENT:
                os.replace(work, directory / _INT8)
            else:  # said once: later processes do not spend seconds finding it out again
                (directory / _REFUSED).write_text(f"int8 agreement {agreement:.5f}\n")
            return agreement
        finally:
            logging.getLogger().removeFilter(quiet)
            work.unlink(missing_ok=True)
            work.with_suffix(".opt").unlink(missing_ok=True)


class _Drop(logging.Filter):
    """Drops log records whose message contains ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def export_tower(
    module: Any,
    tokenizer: Any,
    max_length: int,
    reference: Callable[[list[str]], np.ndarray],
    target: Path,
) -> bool:
    """Export ``module(input_ids, attention_mask) -> (N, dim)`` with its fast tokenizer.

    Writes into a temporary directory beside ``target`` and renames it into place only
    when the ONNX vectors of the check texts match ``reference`` (torch) to PARITY.
    Returns whether ``target`` now holds a tower.
    """
    import importlib.util
    import warnings

    import torch

    if importlib.util.find_spec("onnx") is None:
        raise DependencyError("onnx", "onnx", "Exporting text towers for torch-free queries")
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return False  # a slow tokenizer: nothing the tokenizers library can load
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        ids = torch.ones((1, 4), dtype=torch.long)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on shape checks; parity is tested below
            torch.onnx.export(
                module,
                (ids, torch.ones_like(ids)),
                str(work / _FP32),
                input_names=["input_ids", "attention_mask"],
                output_names=["vectors"],
                dynamic_axes={"input_ids": {0: "n", 1: "t"}, "attention_mask": {0: "n", 1: "t"}},
                opset_version=17,
                dynamo=False,
            )
        backend.save(str(work / "tokenizer.json"))
        _optimise(work)
        (work / "tower.json").write_text(json.dumps({"max_length": max_length, "optimised": True}))
        got = OnnxTextTower(work).encode(_CHECK_TEXTS)
        if float(np.min(np.sum(got * reference(list(_CHECK_TEXTS)), axis=1))) < PARITY:
            return False
        os.replace(work, target)
        return True
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _optimise(work: Path) -> None:
    """Replace ``work/model.onnx`` by its graph optimised by ONNX Runtime (see :func:`_session`)."""
    import onnxruntime as ort

    _session(ort, work, optimised=False, save=work / "model.opt.onnx")
    os.replace(work / "model.opt.onnx", work / _FP32)


def export_clip_text(source: str, max_length: int, target: Path) -> bool:
    """Export the text tower of the CLIP checkpoint in directory ``source`` (loaded in fp32)."""
    import torch
    from transformers import AutoTokenizer, CLIPModel

    model = CLIPModel.from_pretrained(source, dtype=torch.float32, local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)

    class _Tower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.clip = model

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            out = self.clip.get_text_features(input_ids=input_ids, attention_mask=attention_mask)
            return out.pooler_output

    def reference(texts: list[str]) -> np.ndarray:
        rows = []
        with torch.inference_mode():
            for text in texts:
                ids = tokenizer([text], truncation=True, max_length=max_length, return_tensors="pt")
                vec = _Tower()(ids["input_ids"], ids["attention_mask"])
                rows.append(torch.nn.functional.normalize(vec.float(), dim=-1)[0].numpy())
        return np.stack(rows)

    return export_tower(_Tower().eval(), tokenizer, max_length, reference, target)
