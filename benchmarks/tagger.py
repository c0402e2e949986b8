"""Tagging throughput and memory: `lorakit tag` against baselines measured in the same run.

(a) tiny model (decoding dominates): images/s of the tagging stage vs a sequential loop that
    decodes, preprocesses (the reference code) and runs the same session one image at a time.
(b) compute-heavy model (large matrix products): images/s of the tagging stage vs the same
    session running batches of already-preprocessed tensors (decoding should hide behind it).
(c) peak RSS of `lorakit tag` (a real process) on 1,000 vs 4,000 images.

    python benchmarks/tagger.py [--count 2000] [--heavy-count 400] [--memory 1000,4000]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402
from PIL import Image  # noqa: E402

from prep.events import Finished  # noqa: E402
from tagger.config import TagConfig  # noqa: E402
from tagger.run import load_model, tag_dataset  # noqa: E402
from tests.tagger.reference import reference_preprocess  # noqa: E402

LABELS = ROOT / "prep" / "data" / "danbooru_tags.csv"  # the real 10,861-row WD v3 label list


def make_images(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """JPEGs of 300-1,200 px per side, gradients plus blocky noise (decodes like a photo-ish image)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pick = random.Random(seed)
    paths = []
    for i in range(count):
        path = folder / f"img{i:05d}.jpg"
        paths.append(path)
        if path.exists():
            continue
        w, h = pick.randint(300, 1200), pick.randint(300, 1200)
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([x * 200 // w, y * 200 // h, (x + y) * 200 // (w + h)], -1).astype(np.uint8)
        noise = rng.integers(0, 55, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)[:h, :w]
        Image.fromarray(base + noise).save(path, quality=90)
    return paths


def _save(graph, folder: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "model.onnx"))
    shutil.copyfile(LABELS, folder / "selected_tags.csv")
    return folder


def _labels() -> int:
    return sum(1 for _ in open(LABELS, encoding="utf-8")) - 1


def tiny_model(folder: Path, side: int = 448) -> Path:
    """Per-channel means -> one small matmul -> sigmoid: next to no compute."""
    n = _labels()
    rng = np.random.default_rng(1)
    inits = [onnx.numpy_helper.from_array(np.array([1, 2], np.int64), "axes"),
             onnx.numpy_helper.from_array((rng.standard_normal((3, n)) / 255).astype(np.float32), "w"),
             onnx.numpy_helper.from_array(rng.standard_normal(n).astype(np.float32) - 4, "b")]
    nodes = [helper.make_node("ReduceMean", ["image", "axes"], ["m"], keepdims=0),
             helper.make_node("MatMul", ["m", "w"], ["z"]), helper.make_node("Add", ["z", "b"], ["zb"]),
             helper.make_node("Sigmoid", ["zb"], ["output"])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", side, side, 3])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", n])], initializer=inits)
    return _save(graph, folder)


def heavy_model(folder: Path, side: int = 448, width: int = 1536, layers: int = 4) -> Path:
    """Rows of the image through an MLP of large matmuls (several GFLOP per image), pooled, then labels."""
    n = _labels()
    rng = np.random.default_rng(2)
    inits = [onnx.numpy_helper.from_array(np.array([0, side, side * 3], np.int64), "rows")]
    nodes = [helper.make_node("Reshape", ["image", "rows"], ["x0"])]
    prev, dim = "x0", side * 3
    for i in range(layers):
        w = (rng.standard_normal((dim, width)) / np.sqrt(dim) / (255 if i == 0 else 1)).astype(np.float32)
        inits.append(onnx.numpy_helper.from_array(w, f"w{i}"))
        nodes += [helper.make_node("MatMul", [prev, f"w{i}"], [f"h{i}"]), helper.make_node("Relu", [f"h{i}"], [f"r{i}"])]
        prev, dim = f"r{i}", width
    inits += [onnx.numpy_helper.from_array(np.array([1], np.int64), "axis1"),
              onnx.numpy_helper.from_array((rng.standard_normal((width, n)) / np.sqrt(width)).astype(np.float32), "wo")]
    nodes += [helper.make_node("ReduceMean", [prev, "axis1"], ["pooled"], keepdims=0),
              helper.make_node("MatMul", ["pooled", "wo"], ["logits"]), helper.make_node("Sigmoid", ["logits"], ["output"])]
    graph = helper.make_graph(nodes, "heavy", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", side, side, 3])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", n])], initializer=inits)
    return _save(graph, folder)


def link_folder(folder: Path, images: list[Path]) -> Path:
    """A fresh folder of hard links to the images (captions get written there, the images stay shared).

    Not symlinks: the tagger skips a symlink leading out of the dataset (prep.dataset.FOLLOW_SYMLINKS).
    """
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for image in images:
        try:
            os.link(image, folder / image.name)
        except OSError:  # another file system
            shutil.copyfile(image, folder / image.name)
    return folder


def run_stage(folder: Path, loaded, config: TagConfig) -> tuple[float, object]:
    start = time.perf_counter()
    summary = None
    for event in tag_dataset(folder, config, model=loaded):
        if isinstance(event, Finished):
            summary = event.summary
    return time.perf_counter() - start, summary


def stage_config(model: Path, **options) -> TagConfig:
    return TagConfig(model=str(model), device="cpu", mode="overwrite", general_threshold=0.5, **options)


def sequential_loop(images: list[Path], session) -> float:
    """The way most tools tag: open, reference preprocessing, one image per session.run."""
    start = time.perf_counter()
    for path in images:
        with Image.open(path) as image:
            x = reference_preprocess(image, session.layout.side)
        probs = session.run(x)[0]
        _ = np.flatnonzero(probs > 0.5)
    return time.perf_counter() - start


def ready_tensor_loop(count: int, session, tensors: list[np.ndarray]) -> float:
    """Seconds for the session alone over `count` images, from tensors prepared beforehand."""
    batch = tensors[0].shape[0]
    start = time.perf_counter()
    done = 0
    while done < count:
        t = tensors[(done // batch) % len(tensors)][: count - done]
        session.run(t)
        done += t.shape[0]
    return time.perf_counter() - start


def interleaved(images: list[Path], work: Path, name: str, baseline, ours, rounds: int) -> dict[str, float]:
    """Wall and CPU seconds of baseline and ours, run in alternating slices so that the load other
    processes put on the machine during the run falls on both about equally."""
    totals = {"base": 0.0, "ours": 0.0, "base_cpu": 0.0, "ours_cpu": 0.0}
    step = -(-len(images) // rounds)
    for r in range(rounds):
        part = images[r * step:(r + 1) * step]
        if not part:
            break
        order = ("base", "ours") if r % 2 == 0 else ("ours", "base")
        for which in order:
            cpu = time.process_time()  # all threads of this process
            if which == "ours":
                totals["ours"] += ours(part, link_folder(work / f"{name}{r}", part))
            else:
                totals["base"] += baseline(part)
            totals[f"{which}_cpu"] += time.process_time() - cpu
    return totals


def peak_rss_mib(folder: Path, model: Path) -> tuple[float, float]:
    """Peak RSS of a real `lorakit tag` process (resource usage of a wrapper's only child)."""
    code = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        f"r = subprocess.run([sys.executable, '-m', 'tui', 'tag', {str(folder)!r}, '--model', {str(model)!r}, "
        "'--mode', 'overwrite', '--device', 'cpu'], capture_output=True, text=True)\n"
        "assert r.returncode == 0, r.stderr\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    kib, seconds = out.split()
    return int(kib) / 1024, float(seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000, help="images for (a)")
    parser.add_argument("--heavy-count", type=int, default=400, help="images for (b)")
    parser.add_argument("--memory", default="1000,4000", help="folder sizes for (c), comma-separated ('' to skip)")
    parser.add_argument("--rounds", type=int, default=6, help="alternating slices per comparison")
    parser.add_argument("--workdir", type=Path, default=None, help="keep generated images here (reused)")
    args = parser.parse_args()

    sizes = [int(s) for s in args.memory.split(",") if s.strip()]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="lorakit-tagbench-"))
    total = max([args.count, args.heavy_count, *sizes])
    t = time.perf_counter()
    images = make_images(work / "images", total)
    print(f"generated/reused {total} JPEGs in {time.perf_counter() - t:.0f} s under {work}", file=sys.stderr)
    tiny = tiny_model(work / "tiny")
    heavy = heavy_model(work / "heavy")
    rows = []
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

    # (a) tiny model: the stage against the sequential loop, on the same session.
    subset = images[: args.count]
    config = stage_config(tiny)
    loaded = load_model(config)
    written = 0

    def ours_a(part, folder):
        nonlocal written
        seconds, summary = run_stage(folder, loaded, config)
        written += summary.written
        return seconds

    t = interleaved(subset, work, "a", lambda part: sequential_loop(part, loaded.session), ours_a, args.rounds)
    assert written == len(subset), written
    loop_ips, ours_ips = len(subset) / t["base"], len(subset) / t["ours"]
    rows.append((f"(a) tiny model, {len(subset)} JPEGs", f"{ours_ips:.1f} img/s", f"{loop_ips:.1f} img/s (sequential loop)",
                 f"{ours_ips / loop_ips:.2f}x", ">= 2x"))
    ours_ms, loop_ms = t["ours_cpu"] / len(subset) * 1000, t["base_cpu"] / len(subset) * 1000
    rows.append(("(a) CPU time per image (all threads)", f"{ours_ms:.1f} ms", f"{loop_ms:.1f} ms", f"{loop_ms / ours_ms:.2f}x less",
                 f"idle {cores} cores: up to {cores * loop_ms / ours_ms:.1f}x"))

    # (b) heavy model: the stage against the same session on ready tensors.
    subset = images[: args.heavy_count]
    config = stage_config(heavy, batch_size=8)
    loaded = load_model(config)
    side = loaded.session.layout.side
    ready = [reference_preprocess(Image.open(p), side)[0] for p in subset[:32]]
    tensors = [np.stack(ready[i:i + 8]) for i in range(0, 32, 8)]
    loaded.session.run(tensors[0])  # warm-up
    t = interleaved(subset, work, "b", lambda part: ready_tensor_loop(len(part), loaded.session, tensors),
                    lambda part, folder: run_stage(folder, loaded, config)[0], args.rounds)
    bare_s, ours_s = t["base"], t["ours"]
    per_image_ms = bare_s / len(subset) * 1000
    rows.append((f"(b) heavy model ({per_image_ms:.0f} ms/img), {len(subset)} JPEGs", f"{len(subset) / ours_s:.1f} img/s",
                 f"{len(subset) / bare_s:.1f} img/s (session on ready tensors)", f"{bare_s / ours_s:.2f}", ">= 0.8"))

    # (c) memory: a real process per folder size.
    peaks = []
    for n in sizes:
        mib, seconds = peak_rss_mib(link_folder(work / f"m{n}", images[:n]), tiny)
        peaks.append(mib)
        rows.append((f"(c) peak RSS, {n} images", f"{mib:.0f} MiB", f"({n / seconds:.0f} img/s incl. start-up)", "", ""))
    if len(peaks) >= 2:
        rows.append((f"(c) peak RSS {sizes[-1]} / {sizes[0]} images", "", "", f"{peaks[-1] / peaks[0]:.2f}", "~1.0 (flat)"))

    print(f"### benchmarks/tagger.py — {cores} CPU cores, load average {os.getloadavg()[0]:.1f} at the end\n")
    print("| measurement | lorakit tag | baseline (same run) | ratio | target |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
