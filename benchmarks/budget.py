"""The default training budget on a ~5,000-image classification set: one ``full`` trial at the default settings.

    python benchmarks/budget.py [--bccd ../shared/data/bccd] [--work /tmp/bccd-cells] [--epochs N]

The set: every box of BCCD (Pascal VOC, 364 blood-smear images) cut out as its own image, labelled with its cell
type (RBC 4,155 / WBC 372 / Platelets 361 crops), in a CSV manifest whose ``split`` column is the smear's official
split and whose ``patient_id`` is the smear, so no smear has crops on both sides. Then one ``full`` trial of
EfficientNet-Lite0 at the product's defaults (128 px, the data-dependent epoch budget, unless ``--epochs`` asks for
a fixed one, e.g. 30 for the old default). Prints the set's size, the epochs planned and run, the best epoch, the
validation and test balanced accuracy and macro AUC, and the wall time; the last line, readable by a script:
``bar full_trial_minutes M``.
"""

from __future__ import annotations

import argparse
import csv
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from PIL import Image

SPLITS = ("train", "val", "test")  # the names of ImageSets/Main/*.txt and of the manifest's split column


def build_cells(bccd: Path, out: Path) -> Path:
    """Write ``out/cells/*.png`` and ``out/cells.csv`` (once; an existing manifest is reused)."""
    manifest = out / "cells.csv"
    if manifest.exists():
        return manifest
    split_of = {}
    for split in SPLITS:
        for name in (bccd / "ImageSets" / "Main" / f"{split}.txt").read_text().split():
            split_of[name] = split
    (out / "cells").mkdir(parents=True, exist_ok=True)
    rows = []
    for xml in sorted((bccd / "Annotations").glob("*.xml")):
        root = ET.parse(xml).getroot()
        stem = xml.stem
        image = Image.open(bccd / "JPEGImages" / f"{stem}.jpg").convert("RGB")
        for i, obj in enumerate(root.iter("object")):
            box = obj.find("bndbox")
            x1, y1, x2, y2 = (int(float(box.find(k).text)) for k in ("xmin", "ymin", "xmax", "ymax"))
            if x2 - x1 < 4 or y2 - y1 < 4:
                continue
            path = f"cells/{stem}_{i:03d}.png"
            image.crop((x1, y1, x2, y2)).save(out / path)
            rows.append({"path": path, "label": obj.find("name").text.strip(), "split": split_of.get(stem, ""),
                         "patient_id": stem})
    tmp = manifest.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label", "split", "patient_id"])
        writer.writeheader()
        writer.writerows(rows)
    tmp.rename(manifest)
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bccd", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "bccd")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bccd-cells"))
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from medtransfer import RunConfig, TrainConfig
    from medtransfer.run import train

    manifest = build_cells(args.bccd, args.work)
    with manifest.open() as f:
        rows = list(csv.DictReader(f))
    counts = {s: sum(r["split"] == s for r in rows) for s in SPLITS}
    print(f"{len(rows)} cell crops: " + ", ".join(f"{s} {n}" for s, n in counts.items()))
    config = RunConfig(data=str(manifest), strategy="full", seed=args.seed, train=TrainConfig(epochs=args.epochs))
    started = time.perf_counter()
    runs = args.work.with_name(args.work.name + "-runs")  # not inside the data folder (refused)
    result = train(config, runs / f"full-{args.epochs or 'budget'}-{args.seed}", overwrite=True)
    minutes = (time.perf_counter() - started) / 60
    fit = result.fit
    scores = {k: v["value"] for k, v in result.metrics.get("test", {}).items() if isinstance(v, dict) and "value" in v}
    print(f"epochs planned {fit.epochs}, run {len(fit.history)} ({fit.stopped}), best epoch {fit.best_epoch}, "
          f"best val {fit.best_score:.3f}; test " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    print(f"bar full_trial_minutes {minutes:.1f}")


if __name__ == "__main__":
    main()
