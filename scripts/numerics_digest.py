"""A digest of what the code computes: short fp32 eager trainings (the loss of every step, the final weights)
and samples drawn from them, for three presets. Run it in two checkouts and compare the lines: equal digests
mean a refactor left the numerics bit for bit as they were (a study campaign can run on across it).

    python scripts/numerics_digest.py /tmp/digest-now
    (cd ../other-checkout && PYTHONPATH=. python /path/to/scripts/numerics_digest.py /tmp/digest-before)
"""
import hashlib, json, sys, tempfile, torch
from pathlib import Path
from dimr.train import TrainConfig, train
from dimr.checkpoint import load_checkpoint
from dimr.sample import sampler_from_checkpoint, even_labels
out = Path(sys.argv[1])
for preset in ("DiMR-T/3R", "U-ViT-T/4", "DiMR-T/2R"):
    d = out / preset.replace("/", "_")
    train(TrainConfig(preset=preset, steps=12, batch_size=4, dataset_size=64, warmup_steps=2, log_every=1, amp="none",
                      compile="off", seed=1, progress=False), d)
    losses = [json.loads(l)["loss"] for l in (d / "metrics.jsonl").read_text().splitlines()]
    ck = load_checkpoint(d / "latest.pt")
    w = hashlib.sha256(b"".join(v.numpy().tobytes() for v in ck["model"].values())).hexdigest()[:16]
    s = sampler_from_checkpoint(d, device="cpu", steps=4)
    img = s.draw(labels=even_labels(8, s.context["num_classes"]), seed=3, progress=False)
    print(preset, "losses", hashlib.sha256(json.dumps(losses).encode()).hexdigest()[:16], "weights", w,
          "samples", hashlib.sha256(img.numpy().tobytes()).hexdigest()[:16])
