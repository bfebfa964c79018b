"""Bad input, table-driven: each case exits 2 with one paragraph naming the fix, no traceback, and touches no file.

The cases are listed in docs/sweeps.md ("Bad input"); add a row there when you add one here."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bnablate.cli import app
from bnablate.results.records import SCHEMA_VERSION

SWEEP = ["sweep", "model=mlp", "train.epochs=1", "train.batch_size=32", "variant=no_bn,bn_pre_act", "seed=range(2)"]

# (command line, what the message must say: the problem and the fix)
CASES = [
    (["run", "variant=bn_pre_akt"], "Did you mean 'bn_pre_act'"),
    (["run", "train.epochs=0"], "train.epochs must be ≥ 1"),
    (["run", "seed=-1"], "seed must be an integer in [0, 2**32 - 1]"),
    (["run", "train.batch_size=100000"], "use train.batch_size≤"),
    (["run", "dataset=mnist", "dataset.download=false"], "MNIST is not under"),
    (["run", "optim.lr=abc"], "Invalid value for 'optim.lr'"),
    (["run", "train.precision=fp16"], "bf16"),
    (["run", "out_dir=/proc/bnablate-test"], "choose a writable folder with out_dir=PATH"),
    (["run", "variant=bn_dropout", "variant.dropout_p=1.5"], "variant.dropout_p must be in [0, 1)"),
    (["run", "logger=tensorbord"], "Did you mean 'tensorboard'"),
    (["run", "logger.backends=[wandb]"], "Unknown logger 'wandb'"),
    (["run", "logger=mlflow", "logger.mlflow.tracking_uri=nosuchscheme://x"], "give a writable store"),
    (["run", "model.pool=maxx"], "Did you mean 'max'"),
    (["run", "model.padding=-1"], "model.padding must be ≥ 0"),
    (["run", "bn.running_var_init=-1"], "bn.running_var_init must be ≥ 0"),
    (["run", "bn.conv_beta_init=1", "bn.affine=false"], "set bn.affine=true"),
    (["run", "model=resnet", "model.depth=21"], "model.depth must be 6n + 2"),
    (["run", "model=lenet", "variant=rn_full_preact"], "use model=resnet"),
    (["run", "model=resnet", "variant=bn_pre_act", "variant.residual_init=skipinit"], "variant=rn_skipinit"),
    (["run", "model=resnet", "variant=no_bn", "variant.residual_init=zero_gamma"], "norm-free counterpart"),
    (["run", "model=resnet", "variant=rn_zero_gamma", "bn.affine=false"], "set bn.affine=true"),
    (["run", "model=resnet", "model.shortcut=C"], "Unknown model.shortcut 'C'"),
    (["run", "bn.ghost_batch_size=24"], "divide train.batch_size=64 into equal chunks"),
    (["run", "variant=ln_pre_act", "bn.ghost_batch_size=8"], "use variant.norm=batch"),
    (["run", "variant=brn_pre_act", "bn.renorm_rmax=0.5"], "Batch Renorm needs bn.renorm_rmax ≥ 1"),
    (["run", "bn.sync=true", "device=cpu"], "simulate it instead"),
    (["run", "train.nproc=64"], "each process needs its own"),
    (["run", "train.checkpoint=true", "train.nproc=2"], "use train.checkpoint=false"),
    (["run", "train.checkpoint=true", "train.probe=true"], "its per-step rows and hooks are not saved"),
    (["run", "dataset=digits", "dataset.max_memory_mb=0.01"], "only dataset=imagefolder can stream"),
    (["run", "report.alpha=1.5"], "report options: alpha must be in (0, 1)"),
    (["run", "report.metric=final_test_acuracy"], "Did you mean 'final_test_acc'"),
    (["run", "pack=maybe"], "Unknown pack 'maybe'"),
    (["inspect", "model=resnet", "variant.residual=preact"], "Did you mean"),
    (["run", "model.init=xavir"], "Did you mean 'xavier'"),
    (["run", "model=mlp", "model.init=he"], "Leave model.init=torch, or use model.init=xavier"),
    (["run", "model=vit", "variant=tf_pre_dyt", "variant.dyt_alpha0=0"], "variant.dyt_alpha0 is Dynamic Tanh"),
    (["run", "variant.dyt_alpha0=1"], "use variant.norm=dyt"),
    (["run", "optim.wd_exclude=timm"], "set a decay (e.g. optim.weight_decay=0.05)"),
    (["run", "optim.schedule_unit=step"], "choose a schedule (optim.schedule=cosine)"),
    (["run", "optim.schedule=multistep", "optim.milestones=[5,3]"], "must be increasing epochs"),
    (["run", "optim.schedule=multistep", "optim.milestones=[100000]"], "would never lower the lr"),
    (["run", "optim.schedule=cosine", "optim.milestones=[2]"], "set optim.schedule=multistep"),
    (["sweep", "pack=maybe"], "Unknown pack 'maybe'"),
    (["sweep", "pack_size=0"], "pack_size must be auto or an integer ≥ 1"),
    (["sweep", "sweep=nope"], "Unknown sweep 'nope'"),
    (["sweep", "seed=range("], "Malformed override"),
    (["sweep", "model=cnn", "model.channels=[8,8,8,8]"], "use fewer model.channels or another model"),
    (["sweep", "variant=no_bn,bn_pre_akt"], "Did you mean 'bn_pre_act'"),
    (["sweep", "--until-decided", "report.margin=0"], "margin must be a positive number of metric points"),
    (["sweep", "--until-decided", "report.alpha=1.5"], "alpha must be in (0, 1)"),
    (["sweep", "--until-decided", "report.metric=final_test_acuracy"], "Did you mean 'final_test_acc'"),
    (["sweep", "report.compare=pairz"], "Unknown compare mode 'pairz'"),
    (["sweep", "--until-decided", "--max-seeds", "2"], "give --max-seeds 9 or more"),
    (["sweep", "--until-decided", "--seed-step", "0"], "--seed-step must be ≥ 1"),
    (["sweep", "--until-decided", "--wait-timeout", "-1"], "--wait-timeout -1 (poll 10 s): give seconds ≥ 0"),
    (["sweep", "--tune", "seed=0,1"], "the seed is the replicate, not a hyperparameter"),
    (["sweep", "--tune", "dataset.root=a,b"], "a location key cannot change the results"),
    (["sweep", "--tune", "optim.lrr=0.1,0.01"], "--tune optim.lrr: not a config key. Did you mean 'optim.lr'?"),
    (["sweep", "--tune", "optim.lr=0.1"], "a grid needs at least 2 values"),
    (["sweep", "--tune", "optim.lr=interval(0.1,0.001)"], "the interval's low end must be below its high end"),
    (["sweep", "--tune", "optim.lr=tag(log,interval(0,0.1))"], "a log range must stay above 0"),
    (["sweep", "--tune", "optim.lr=tag(cube,interval(0.001,0.1))"], "unknown tag cube"),
    (["sweep", "--tune", "variant.norm=interval(0,1)"], "a range needs a number"),
    (["sweep", "--tune", "optim.lr=interval(0.001,0.1)", "--tune-trials", "0"], "at least 1 trial per variant"),
    (["sweep", "--tune", "optim.lr=interval(0.001,0.1)", "--tune-sampler", "grid"], "needs a list of values"),
    (["sweep", "--tune", "optim.lr=0.01,0.1", "--tune-pruner", "hyperband"], "choose from none, median, asha"),
    (["sweep", "--tune", "optim.lr=0.01,0.1", "--tune-pruner", "median", "train.epochs=1"], "nothing to prune"),
    (["sweep", "--tune", "optim.lr=0.01,0.1", "--tune-metric", "final_test_acc"], "selection never sees the test split"),
    (["sweep", "--tune", "optim.lr=0.01,0.1", "seed=0"], "give at least 2, e.g. seed=range(5)"),
    (["sweep", "--tune", "optim.lr=0.01,0.1", "seed=1000,1001"], "overlap the evaluation seeds"),
    (["sweep", "--tune", "optim.lr=0.01,0.1", "optim.lr=0.1,0.3"], "is both swept (0.1, 0.3) and tuned"),
    (["run", "dataset=arrays"], "dataset=arrays needs dataset.path"),
    (["run", "dataset=arrays", "dataset.path=mine/nope.npz"], "no such file or folder"),
    (["run", "dataset=arrays", "dataset.path=mine/garbage.npz"], "is not a readable .npz"),
    (["run", "dataset=arrays", "dataset.path=mine/nokeys.npz"], "lacks x_test, y_test"),
    (["run", "dataset=arrays", "dataset.path=mine/short.npz"], "do not match"),
    (["run", "dataset=arrays", "dataset.path=mine/ok.npz", "dataset.num_classes=2"], "raise dataset.num_classes"),
    (["run", "dataset=arrays", "dataset.path=mine/ok.npz", "dataset.layout=CHW"], "not one of auto, NCHW, NHWC"),
    (["run", "dataset=mine/ok.npz"], "use dataset=arrays dataset.path=mine/ok.npz"),
    (["sweep", "dataset=imagefolder", "dataset.path=mine/empty"], "at least two class folders"),
    (["sweep", "dataset=imagefolder", "dataset.path=mine/mixed"], "set dataset.image_size=N"),
    (["sweep", "dataset=imagefolder", "dataset.path=mine/ok.npz"], "is a file"),
    (["sweep", "dataset=imagefolder", "dataset.path=mine/broken_first"],
     "broken_first/c0/0.png could not be decoded as an image"),
    (["sweep", "dataset=imagefolder", "dataset.path=mine/broken_later"],
     "broken_later/c1/3.png could not be decoded as an image"),
    (["sweep", "model=mlp", "dataset=arrays", "dataset.path=mine/nan.npz"],
     "x_train[4, 2, 1, 0] is nan, the first of 1 non-finite value(s) in x_train"),
    (["sweep", "dataset=torchvision"], "dataset=torchvision needs dataset.name=NAME"),
    (["sweep", "dataset=torchvision", "dataset.name=CIFAR100"], "Did you mean 'cifar100'"),
    (["sweep", "dataset=torchvision", "dataset.name=svhn", "dataset.download=false"], "train_32x32.mat"),
    (["sweep", "dataset=torchvision", "dataset.name=emnist", "dataset.split=letterz"], "not an EMNIST split"),
    (["sweep", "dataset=torchvision", "dataset.name=kmnist", "dataset.split=letters"], "has none: remove it"),
    (["report", "runs/none"], "holds no run records"),
    (["report", "runs/ok", "--format", "pdf"], "Unknown --format pdf"),
    (["report", "runs/ok", "--alpha", "2"], "alpha must be in (0, 1)"),
    (["report", "runs/ok", "--margin", "-0.5"], "margin must be a positive number of metric points"),
    (["report", "runs/ok", "--compare", "all"], "Unknown compare mode 'all'"),
    (["report", "runs/ok", "--metric", "nope"], "Unknown metric 'nope'"),
    (["report", "runs/ok", "--by", "nope"], "Unknown --by column(s) nope"),
    (["report", "runs/newer"], "Upgrade bnablate"),
    (["report", "runs/bad", "--strict"], "drop --strict"),
    (["verify", "runs/none"], "holds no run records"),
    (["verify", "runs/ok", "--sample", "-1"], "--sample must be ≥ 0"),
    (["verify", "runs/bad", "--strict"], "drop --strict"),
    (["verify", "runs/alien"], "Unknown model 'tiny'"),
    (["inspect", "model=nope"], "Unknown model 'nope'"),
    (["inspect", "variant.norm=batchh"], "Did you mean 'batch'"),
    (["bench", "--cases", "nope"], "Unknown bench case(s) nope"),
    (["bench", "--device", "tpu"], "Unknown device 'tpu'"),
    (["bench", "--reps", "0"], "--reps and --samples must be ≥ 1"),
]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    base = tmp_path_factory.mktemp("finished")
    res = CliRunner().invoke(app, [*SWEEP, f"out_dir={base / 'ok'}"], catch_exceptions=False,
                             env={"BNABLATE_CACHE_DIR": str(base / "cache"), "BNABLATE_DATA_ROOT": str(base)})
    assert res.exit_code == 0, res.output
    return base / "ok"


def _alien(finished: Path, out: Path) -> None:
    """Records of a model this bnablate has not registered (a plugin's, not loaded): their keys recomputed, so they
    are valid records."""
    from bnablate.results import run_key

    (out / "records").mkdir(parents=True)
    for path in (finished / "records").glob("*.json"):
        rec = json.loads(path.read_text())
        rec["config"]["model"]["name"] = "tiny"
        rec["run_key"] = run_key(rec["config"])
        (out / "records" / f"{rec['run_key']}.json").write_text(json.dumps(rec))


def _own_data(root: Path) -> None:
    """The user's own files, broken in each way the CASES name (tiny: written for every case)."""
    import numpy as np

    from bnablate.data.fake_files import write_image_folder, write_npz

    write_npz(root / "ok.npz", n_train=30, n_test=9)
    (root / "garbage.npz").write_bytes(b"not a zip")
    np.savez(root / "nokeys.npz", x_train=np.zeros((4, 2, 2)), y_train=np.zeros(4, dtype=int))
    np.savez(root / "short.npz", x_train=np.zeros((4, 2, 2)), y_train=np.zeros(3, dtype=int),
             x_test=np.zeros((2, 2, 2)), y_test=np.zeros(2, dtype=int))
    (root / "empty" / "only").mkdir(parents=True)
    write_image_folder(root / "mixed", classes=2, per_class=2, size=(6, 6), test_per_class=0)
    write_image_folder(root / "other", classes=2, per_class=1, size=(5, 5), test_per_class=0, seed=1)
    (root / "other" / "c1" / "1.png").rename(root / "mixed" / "c1" / "z.png")
    for name, broken in (("broken_first", "c0/0.png"), ("broken_later", "c1/3.png")):  # the header sniff; a decode
        write_image_folder(root / name, classes=2, per_class=2, size=(6, 6), test_per_class=0)
        (root / name / broken).write_bytes(b"")
    arrays = dict(np.load(root / "ok.npz"))
    x = arrays["x_train"].astype(np.float32)
    x[4, 2, 1, 0] = np.nan
    np.savez(root / "nan.npz", **{**arrays, "x_train": x})


def _snapshot(root: Path) -> dict:
    """Every file under root (the data cache aside: a cache, not output) → its bytes' hash."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "cache" not in p.relative_to(root).parts}


@pytest.mark.parametrize("args,fix", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_input_is_one_paragraph_naming_the_fix_and_changes_nothing(args, fix, finished, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(finished, runs / "ok")
    shutil.copytree(finished, runs / "bad")
    (runs / "bad" / "records" / "notes.json").write_text("{}")
    shutil.copytree(finished, runs / "newer")
    path = sorted((runs / "newer" / "records").glob("*.json"))[0]
    path.write_text(json.dumps({**json.loads(path.read_text()), "schema_version": SCHEMA_VERSION + 1}))
    _alien(finished, runs / "alien")
    _own_data(tmp_path / "mine")
    before = _snapshot(tmp_path)
    res = CliRunner().invoke(app, args, terminal_width=200)
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    message = res.output.split("Error:", 1)[1].strip()
    assert "\n\n" not in message  # one paragraph
    assert fix in " ".join(message.split()), message  # line wrapping aside
    assert _snapshot(tmp_path) == before  # nothing written, nothing changed


def test_the_table_is_large_and_covers_every_command():
    assert len(CASES) >= 20
    assert {a[0] for a, _ in CASES} == {"run", "sweep", "report", "verify", "inspect", "bench"}
