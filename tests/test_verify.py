"""`bnablate verify`: recorded runs re-run from their saved configs reproduce exactly; a tampered metric is reported."""

import json
from pathlib import Path

from typer.testing import CliRunner

from bnablate.cli import app

SWEEP = ["sweep", "dataset=synthetic", "model=mlp", "variant=no_bn,bn_pre_act", "seed=range(2)", "train.epochs=2",
         "out_dir=runs/v"]


def _files(folder: Path):
    return sorted((p.relative_to(folder), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file())


def test_verify_reproduces_then_catches_a_tampered_metric():
    assert CliRunner().invoke(app, SWEEP).exit_code == 0
    runs = Path("runs/v")
    before = _files(runs)
    ok = CliRunner().invoke(app, ["verify", str(runs), "--sample", "0"])
    assert ok.exit_code == 0, ok.output
    assert "all 4 re-run(s) reproduced every per-epoch metric exactly" in ok.output
    assert _files(runs) == before  # re-runs train in a temporary folder; the records are only read
    path = sorted((runs / "records").glob("*.json"))[0]
    rec = json.loads(path.read_text())
    rec["metrics"][1]["val_acc"] += 0.01
    path.write_text(json.dumps(rec))
    bad = CliRunner().invoke(app, ["verify", str(runs), "--sample", "0"])
    assert bad.exit_code == 1
    assert "metrics that did not reproduce" in bad.output and rec["run_key"] in bad.output and "val_acc" in bad.output
    assert "1 of 4 re-run(s) differ" in bad.output


def test_verify_samples_runs_and_rejects_bad_input():
    assert CliRunner().invoke(app, SWEEP).exit_code == 0
    some = CliRunner().invoke(app, ["verify", "runs/v", "--sample", "1", "--seed", "3"])
    assert some.exit_code == 0 and "all 1 re-run(s)" in some.output
    missing = CliRunner().invoke(app, ["verify", "runs/nothing"])
    assert missing.exit_code == 2 and "holds no run records" in missing.output
    negative = CliRunner().invoke(app, ["verify", "runs/v", "--sample", "-1"])
    assert negative.exit_code == 2 and "--sample must be ≥ 0" in negative.output


def test_verify_reruns_a_finetuned_run_with_its_own_pretraining():
    run = ["run", "dataset=digits", "model=mlp", "dataset.classes=[5,6,7,8,9]", "finetune.source=digits",
           "finetune.source_classes=[0,1,2,3,4]", "finetune.source_epochs=1", "finetune.bn=freeze", "train.epochs=1",
           "out_dir=runs/f"]
    assert CliRunner().invoke(app, run).exit_code == 0
    before = _files(Path("runs/f"))
    ok = CliRunner().invoke(app, ["verify", "runs/f"])
    assert ok.exit_code == 0 and "all 1 re-run(s) reproduced" in ok.output, ok.output
    assert _files(Path("runs/f")) == before  # its record and checkpoint are left as they were


def test_a_packed_run_is_verified_by_retraining_its_pack():
    sweep = ["sweep", "dataset=synthetic", "model=lenet", "variant=bn_pre_act", "seed=range(3)", "train.epochs=2",
             "optim=sgd", "train.batch_size=8", "pack=true", "out_dir=runs/p"]
    assert CliRunner().invoke(app, sweep).exit_code == 0
    recs = [json.loads(p.read_text()) for p in sorted(Path("runs/p/records").glob("*.json"))]
    assert all(r["pack_size"] == 3 and len(r["pack_members"]) == 3 for r in recs)
    assert {r["provenance"]["pack_impl"] for r in recs} == {"grouped"}
    ok = CliRunner().invoke(app, ["verify", "runs/p", "--sample", "0"])
    assert ok.exit_code == 0 and "all 3 re-run(s) reproduced every per-epoch metric exactly" in ok.output, ok.output
    # a packed record from before members were recorded is re-run alone, and a mismatch says why it may differ
    path = Path("runs/p/records") / f"{recs[0]['run_key']}.json"
    old = {k: v for k, v in recs[0].items() if k != "pack_members"}
    old["metrics"][0]["train_loss"] += 1.0
    path.write_text(json.dumps(old))
    bad = CliRunner().invoke(app, ["verify", "runs/p", "--sample", "0"])
    assert bad.exit_code == 1 and "recorded without its members, so re-run alone" in bad.output
    # a member's record gone (deleted, or a folder holding part of a sweep): the others are re-run alone, and say so
    Path("runs/p/records", f"{recs[2]['run_key']}.json").unlink()
    changed = json.loads(json.dumps(recs[1]))
    changed["metrics"][0]["train_loss"] += 1.0
    Path("runs/p/records", f"{recs[1]['run_key']}.json").write_text(json.dumps(changed))
    gone = CliRunner().invoke(app, ["verify", "runs/p", "--sample", "0"])
    assert gone.exit_code == 1
    assert f"whose member record(s) {recs[2]['run_key']} are not in this folder, so re-run alone" in gone.output
