"""Per-example test correctness in run records: the compact encoding, lone and packed runs, the schema, verify."""

import json

import numpy as np
import pytest
import torch

import bnablate
from bnablate.config import compose_config
from bnablate.results.correctness import decode_correct, encode_correct, record_correct
from bnablate.results.schema import scan_records
from bnablate.train import run_experiment, run_packed
from bnablate.verify import verify_runs

RUN = ["dataset=digits", "model=mlp", "train.epochs=1"]


def _records(folder):
    return [json.loads(p.read_text()) for p in sorted((folder / "records").glob("*.json"))]


def _assert_consistent(rec):
    """The mask holds n_test examples and its mean is the last epoch's test_acc, to the last bit."""
    mask = record_correct(rec)
    assert mask.dtype == bool and mask.shape == (rec["n_test"],)
    assert mask.sum() / len(mask) == rec["metrics"][-1]["test_acc"]
    return mask


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 359, 10_000])
def test_masks_round_trip_in_n_over_8_bytes(n):
    mask = np.random.default_rng(n).random(n) < 0.9
    field = encode_correct(mask)
    assert field["n"] == n and field["bits"].isascii() and len(field["bits"]) == 4 * (((n + 7) // 8 + 2) // 3)
    assert np.array_equal(decode_correct(field), mask)
    assert encode_correct(torch.from_numpy(mask)) == field  # a torch tensor encodes alike
    assert len(json.dumps(encode_correct(np.ones(10_000, bool)))) < 1700  # CIFAR-10's test set: ~1.7 kB of JSON


def test_encoding_refuses_what_is_not_a_1d_bool_mask():
    for bad in (np.ones(8, int), np.ones((2, 8), bool)):
        with pytest.raises(ValueError, match="1-D bool array"):
            encode_correct(bad)


@pytest.mark.parametrize("field,message", [
    ([9, "AQI="], "must be an object {n, bits}, got a list"),
    ({"n": "9", "bits": "AQI="}, "n must be a non-negative integer, got '9'"),
    ({"n": True, "bits": "AQI="}, "n must be a non-negative integer"),
    ({"n": -1, "bits": ""}, "n must be a non-negative integer"),
    ({"n": 9}, "bits must be a base64 string, got a NoneType"),
    ({"n": 9, "bits": "AQ*="}, "bits is not valid base64"),
    ({"n": 9, "bits": "AQIé"}, "bits is not valid base64"),
    ({"n": 9, "bits": "AQID"}, "holds 3 bytes, but n=9 examples take 2"),
    ({"n": 9, "bits": "AQM="}, "sets padding bits past its n=9 examples"),  # bit 9 of 0x01 0x03
])
def test_a_malformed_field_is_a_clear_error(field, message):
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        decode_correct(field)


def test_a_lone_run_records_which_test_images_it_got_right(tmp_path):
    rec = bnablate.run(RUN, out_dir=tmp_path)
    written = _records(tmp_path)[0]
    assert written["test_correct"] == rec["test_correct"] and written["n_test"] == 359
    mask = _assert_consistent(written)
    assert 0 < mask.sum() < len(mask)
    assert record_correct({k: v for k, v in written.items() if k != "test_correct"}) is None  # records before it


def test_each_packed_run_records_its_own_mask_as_if_trained_alone(tmp_path):
    over = RUN + ["variant=bn_pre_act"]  # one variant: the sweep preset's grid would add the others
    runs = bnablate.sweep(over + ["seed=range(2)", "pack=true"], out_dir=tmp_path / "packed")
    assert list(runs["pack_size"]) == [2, 2]
    packed = {r["config"]["seed"]: r for r in _records(tmp_path / "packed")}
    masks = {s: _assert_consistent(r) for s, r in packed.items()}
    assert not np.array_equal(masks[0], masks[1])  # each run its own mask, not the pack's
    for seed, mask in masks.items():
        lone = bnablate.run(over + [f"seed={seed}"], out_dir=tmp_path / "lone")
        assert lone["run_key"] == packed[seed]["run_key"] and "pack_size" not in lone
        # within 1 % of the test images: packed kernels sum in another order, which can flip an argmax whose top two
        # logits tie to ~1e-6 (one image at two torch threads, two at one thread on the AMD EPYC reference machine)
        assert (mask != _assert_consistent(lone)).sum() <= 0.01 * len(mask)


def test_a_diverged_run_keeps_the_mask_of_the_epoch_it_diverged():
    over = ["dataset=synthetic", "model=mlp", "variant=no_bn", "optim=sgd", "optim.lr=1e12", "train.epochs=3"]
    cfgs = [compose_config(over + [f"seed={s}"]) for s in (0, 1)]
    for res in run_packed(cfgs) + [run_experiment(cfgs[0])]:
        assert res["status"] == "diverged" and len(res["metrics"]) < 3
        _assert_consistent(res)


def _edit_first_record(folder, edit):
    path = sorted((folder / "records").glob("*.json"))[0]
    rec = json.loads(path.read_text())
    edit(rec)
    path.write_text(json.dumps(rec))
    return path, rec


def _flip(rec, *examples):
    mask = record_correct(rec)
    mask[list(examples)] ^= True
    rec["test_correct"] = encode_correct(mask)


@pytest.mark.parametrize("edit,problem", [
    (lambda r: _flip(r, 0), "test_correct marks"),  # one bit flipped: the count no longer gives test_acc
    (lambda r: r["metrics"][-1].update(test_acc=r["metrics"][-1]["test_acc"] + 1e-9), "but the last epoch's test_acc"),
    (lambda r: r.update(n_test=360), "test_correct holds 359 test examples, but n_test is 360"),
    (lambda r: r["test_correct"].update(bits="not base64!"), "test_correct.bits is not valid base64"),
    (lambda r: r.update(test_correct=None), "test_correct must be an object"),
])
def test_a_record_whose_mask_disagrees_is_a_bad_record(tmp_path, edit, problem):
    bnablate.run(RUN, out_dir=tmp_path)
    path, _ = _edit_first_record(tmp_path, edit)
    scan = scan_records(tmp_path)
    assert not scan.records and [b.path for b in scan.bad] == [path] and problem in scan.bad[0].problem
    _edit_first_record(tmp_path, lambda r: r.pop("test_correct"))  # without the field (as before it) it reads again
    assert len(scan_records(tmp_path).records) == 1


def test_verify_flags_a_tampered_mask(tmp_path):
    bnablate.run(RUN, out_dir=tmp_path / "runs")
    assert list(verify_runs(tmp_path / "runs", 0, 0, tmp_path / "scratch").values()) == [[]]  # reproduces exactly
    mask = record_correct(_records(tmp_path / "runs")[0])
    right, wrong = int(np.flatnonzero(mask)[0]), int(np.flatnonzero(~mask)[0])
    _, rec = _edit_first_record(tmp_path / "runs", lambda r: _flip(r, right, wrong))  # same count: a valid record
    [found] = verify_runs(tmp_path / "runs", 0, 0, tmp_path / "scratch").values()
    assert [(m.metric, m.epoch, m.rerun) for m in found] == [
        ("test_correct", 1, f"{mask.sum()}/359 correct, 2 example(s) differ")]
    _edit_first_record(tmp_path / "runs", lambda r: r.pop("test_correct"))  # a record from before: nothing to compare
    assert list(verify_runs(tmp_path / "runs", 0, 0, tmp_path / "scratch").values()) == [[]]
