"""Tests for lstmae.persistence.model_file: one safetensors file, atomic writes, every refused file."""

from __future__ import annotations

import json
import math
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from safetensors.torch import save_file

from lstmae.persistence import model_file as io
from lstmae.config import NetworkConfig
from lstmae.errors import LstmaeError, ModelFileError
from lstmae.persistence.model_file import FORMAT_NAME, FORMAT_VERSION, METADATA_KEY, load_model, save_model, tensors_digest
from lstmae.backends.network import LSTMAutoencoder
from paths import FILES


def example_tensors() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    net = LSTMAutoencoder(NetworkConfig(n_features=2, timesteps=4, units=(4, 2), architecture="repeat"))
    tensors = {f"net.{k}": v for k, v in net.state_dict().items()}
    tensors["scaler.mean"] = torch.tensor([1.5, -2.0], dtype=torch.float64)
    tensors["scaler.scale"] = torch.tensor([0.25, 3.0], dtype=torch.float64)
    return tensors


INFO = {
    "params": {"units": [4, 2], "threshold": "auto", "seed": None, "lr": 1e-3},
    "fitted": {"threshold_": 0.125, "history_": {"loss": [1.0, 0.5]}, "name": "café ✓"},
}


def read_header(path: Path) -> dict:
    """Parse the safetensors header by hand: u64 little-endian length, then JSON."""
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + length])


def refused(path, match: str) -> str:
    with pytest.raises(ModelFileError, match=match) as info:
        load_model(path)
    assert isinstance(info.value, LstmaeError)
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.fixture
def saved(tmp_path) -> Path:
    path = tmp_path / "model.safetensors"
    save_model(path, example_tensors(), INFO)
    return path


# ------------------------------------------------------------------ round trip


def test_round_trip_identical_tensors_and_info(saved):
    tensors, info = load_model(saved)
    original = example_tensors()
    assert set(tensors) == set(original)
    for name, tensor in original.items():
        assert tensors[name].dtype == tensor.dtype
        assert tensors[name].device.type == "cpu"
        assert torch.equal(tensors[name], tensor), name
    for key, value in INFO.items():
        assert info[key] == value
    assert info["format"] == FORMAT_NAME == "lstmae.model"
    assert info["format_version"] == FORMAT_VERSION == 4  # 4: aggregation "peak" (3: parts' fitted options; 2: parts by name; 1-3 load)
    assert info["tensors_sha256"] == tensors_digest(original)
    for key in ("lstmae_version", "torch_version", "numpy_version", "python_version", "created_utc"):
        assert isinstance(info[key], str) and info[key]


def test_round_trip_non_finite_info_values(tmp_path):
    path = tmp_path / "m.safetensors"
    save_model(path, {"w": torch.zeros(2)}, {"x": math.nan, "y": math.inf})
    _, info = load_model(path)
    assert math.isnan(info["x"]) and info["y"] == math.inf


def test_save_returns_path_and_accepts_str(tmp_path):
    target = tmp_path / "sub" / "dir" / "m.safetensors"  # missing directories are created
    assert save_model(str(target), {"w": torch.ones(3)}, {}) == target
    assert torch.equal(load_model(str(target))[0]["w"], torch.ones(3))


def test_non_contiguous_and_grad_tensors_are_saved(tmp_path):
    base = torch.arange(12.0).reshape(3, 4)
    weight = torch.nn.Parameter(torch.ones(2))
    path = tmp_path / "m.safetensors"
    save_model(path, {"t": base.T, "p": weight}, {})
    tensors, _ = load_model(path)
    assert torch.equal(tensors["t"], base.T)
    assert torch.equal(tensors["p"], torch.ones(2)) and not tensors["p"].requires_grad


def test_file_is_one_plain_safetensors_file_with_lstmae_header(saved):
    assert sorted(os.listdir(saved.parent)) == ["model.safetensors"]  # no side files, no temporaries
    header = read_header(saved)
    assert set(header) - {"__metadata__"} == set(example_tensors())
    document = json.loads(header["__metadata__"][METADATA_KEY])
    assert document["format"] == FORMAT_NAME
    assert document["format_version"] == FORMAT_VERSION
    assert len(document["tensors_sha256"]) == 64
    int(document["tensors_sha256"], 16)  # hexadecimal
    # any safetensors reader gets the same tensors back
    plain = safetensors.torch.load_file(saved)
    for name, tensor in example_tensors().items():
        assert torch.equal(plain[name], tensor)


def test_saving_again_replaces_the_file(saved):
    save_model(saved, {"w": torch.full((2,), 7.0)}, {"second": True})
    tensors, info = load_model(saved)
    assert list(tensors) == ["w"] and info["second"] is True
    assert os.listdir(saved.parent) == ["model.safetensors"]


# ------------------------------------------------------------------ digest


def test_digest_depends_on_names_dtypes_shapes_and_bytes():
    base = {"a": torch.arange(6, dtype=torch.float32), "b": torch.zeros(2, dtype=torch.float64)}
    digest = tensors_digest(base)
    assert digest == tensors_digest({"b": base["b"].clone(), "a": base["a"].clone()})  # order-free
    variants = [
        {"a2": base["a"], "b": base["b"]},  # name
        {"a": base["a"].to(torch.int32).view(torch.float32), "b": base["b"]},  # same shape, other bytes
        {"a": base["a"].view(torch.int32), "b": base["b"]},  # same bytes, other dtype
        {"a": base["a"].reshape(2, 3), "b": base["b"]},  # same bytes, other shape
        {"a": base["a"]},  # a tensor missing
        {"a": base["a"], "b": base["b"], "c": torch.zeros(0)},  # an extra empty tensor
    ]
    digests = {tensors_digest(v) for v in variants}
    assert digest not in digests and len(digests) == len(variants)


# ------------------------------------------------------------------ atomic writes


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), RuntimeError("boom"), KeyboardInterrupt()])
def test_failed_write_leaves_previous_file_and_no_temporary(saved, monkeypatch, error):
    before = saved.read_bytes()
    calls = []

    def failing_save_file(tensors, filename, metadata=None):
        calls.append(filename)
        Path(filename).write_bytes(b"half a model")  # something was written before the failure
        raise error

    monkeypatch.setattr(safetensors.torch, "save_file", failing_save_file)
    if isinstance(error, OSError):
        with pytest.raises(ModelFileError, match=r"cannot write the model to '.*model\.safetensors': No space left on device\."):
            save_model(saved, {"w": torch.ones(1)}, {})
    else:
        with pytest.raises(type(error)):
            save_model(saved, {"w": torch.ones(1)}, {})
    assert len(calls) == 1
    assert Path(calls[0]).parent == saved.parent  # the temporary was in the target's directory
    assert Path(calls[0]) != saved
    assert saved.read_bytes() == before
    assert os.listdir(saved.parent) == ["model.safetensors"]
    assert load_model(saved)[1]["fitted"] == INFO["fitted"]


def test_save_into_a_directory_refused(tmp_path):
    with pytest.raises(ModelFileError, match=r"cannot write the model to '.*': it is a directory; give a file name"):
        save_model(tmp_path, {"w": torch.ones(1)}, {})


def test_save_below_a_file_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ModelFileError, match=r"cannot write the model to '.*file/m\.safetensors': "):
        save_model(blocker / "m.safetensors", {"w": torch.ones(1)}, {})
    assert blocker.read_text() == "x"


# ------------------------------------------------------------------ refused files


def test_missing_file(tmp_path):
    refused(tmp_path / "nope.safetensors", r"no model file at '.*nope\.safetensors'; train one with `lstmae fit DATA -o")


def test_directory(tmp_path):
    refused(tmp_path, r"is a directory, not a model file; pass the \.safetensors file")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    refused(path, r"model file '.*empty\.safetensors' is empty \(0 bytes\)")


@pytest.mark.parametrize("fraction", [0.001, 0.01, 0.1, 0.5, 0.9, 0.99])
def test_truncated_file(saved, fraction):
    data = saved.read_bytes()
    cut = max(1, int(len(data) * fraction))
    saved.write_bytes(data[:cut])
    refused(saved, r"is not a readable lstmae model \(damaged, truncated or not a safetensors file: .+\); train it again\.")


@pytest.mark.parametrize("drop", [1, 4, 8])
def test_truncated_by_a_few_bytes(saved, drop):
    data = saved.read_bytes()
    saved.write_bytes(data[:-drop])
    refused(saved, r"is not a readable lstmae model")


def test_truncated_right_after_the_header(saved):
    data = saved.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    for cut in (8, 8 + length - 1, 8 + length):
        saved.write_bytes(data[:cut])
        refused(saved, r"is not a readable lstmae model")


@pytest.mark.parametrize("from_end", [1, 5, 17])
def test_bit_flip_in_tensor_data_fails_the_checksum(saved, from_end):
    data = bytearray(saved.read_bytes())
    (length,) = struct.unpack("<Q", data[:8])
    position = len(data) - from_end
    assert position >= 8 + length  # inside the tensor data
    data[position] ^= 0x01
    saved.write_bytes(bytes(data))
    refused(saved, r"is damaged: its weights do not match the checksum stored with them; train it again\.")


def test_bit_flip_at_start_of_tensor_data(saved):
    data = bytearray(saved.read_bytes())
    (length,) = struct.unpack("<Q", data[:8])
    data[8 + length] ^= 0x80
    saved.write_bytes(bytes(data))
    refused(saved, r"do not match the checksum")


@pytest.mark.parametrize(
    "content",
    [b"\x00", b"garbage bytes, not a model at all", os.urandom(256), b"\xff" * 64, pickle.dumps({"a": 1})],
)
def test_garbage_bytes(tmp_path, content):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(content)
    refused(path, r"is not a readable lstmae model \(damaged, truncated or not a safetensors file")


def test_safetensors_without_lstmae_header(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.ones(2)}, str(path))
    refused(path, r"is a safetensors file but not an lstmae model \(no 'lstmae' header\)")
    save_file({"w": torch.ones(2)}, str(path), metadata={"something": "else"})
    refused(path, r"no 'lstmae' header")


def write_with_document(path: Path, document, tensors=None) -> None:
    tensors = tensors if tensors is not None else {"w": torch.ones(2)}
    text = document if isinstance(document, str) else json.dumps(document)
    save_file(tensors, str(path), metadata={METADATA_KEY: text})


def valid_document(tensors) -> dict:
    return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "tensors_sha256": tensors_digest(tensors)}


def test_handwritten_valid_file_loads(tmp_path):
    # the counterpart of the refusals below: the same writer, a correct document
    path = tmp_path / "ok.safetensors"
    tensors = {"w": torch.ones(2)}
    write_with_document(path, valid_document(tensors), tensors)
    loaded, info = load_model(path)
    assert torch.equal(loaded["w"], tensors["w"]) and info["format_version"] == FORMAT_VERSION


def test_newer_format_version(tmp_path):
    path = tmp_path / "future.safetensors"
    tensors = {"w": torch.ones(2)}
    write_with_document(path, {**valid_document(tensors), "format_version": FORMAT_VERSION + 1}, tensors)
    refused(
        path,
        rf"uses model format {FORMAT_VERSION + 1}, newer than this lstmae \(.+\) reads \(format {FORMAT_VERSION}\); upgrade lstmae",
    )


@pytest.mark.parametrize("version", [0, -1, "1", 1.0, None])
def test_invalid_format_version(tmp_path, version):
    path = tmp_path / "bad.safetensors"
    tensors = {"w": torch.ones(2)}
    document = valid_document(tensors)
    if version is None:
        del document["format_version"]
    else:
        document["format_version"] = version
    write_with_document(path, document, tensors)
    refused(path, rf"has an invalid format version {repr(version).replace('.', '[.]')}\.")


@pytest.mark.parametrize(("document", "shown"), [({"format": "keras.model"}, "'keras.model'"), ({}, "None"), ([1, 2], "None")])
def test_wrong_format_name(tmp_path, document, shown):
    path = tmp_path / "wrong.safetensors"
    if isinstance(document, dict):
        document = {**valid_document({"w": torch.ones(2)}), **document} if document else {"format_version": 1}
    write_with_document(path, document)
    refused(path, rf"is not an lstmae model \(format {shown}\)\.")


def test_damaged_header_json(tmp_path):
    path = tmp_path / "bad.safetensors"
    write_with_document(path, '{"format": "lstmae.model", ')
    refused(path, r"has a damaged header \(.+\); train the model again\.")


def test_tensors_not_matching_stored_checksum(tmp_path):
    path = tmp_path / "swapped.safetensors"
    write_with_document(path, valid_document({"w": torch.ones(2)}), {"w": torch.zeros(2)})
    refused(path, r"do not match the checksum")
    write_with_document(path, {"format": FORMAT_NAME, "format_version": 1}, {"w": torch.ones(2)})
    refused(path, r"do not match the checksum")  # no checksum at all


# ------------------------------------------------------------------ no pickle


def test_loading_never_unpickles(saved, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("pickle / torch.load used while loading a model")

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(np, "load", forbidden)
    tensors, info = load_model(saved)
    assert torch.equal(tensors["scaler.scale"], example_tensors()["scaler.scale"])
    assert info["format"] == FORMAT_NAME


def test_io_module_does_not_import_pickle_or_torch_load():
    source = Path(io.__file__).read_text()
    assert "pickle" not in source.replace("no pickle", "")
    assert "torch.load" not in source


# ------------------------------------------------- estimator files: state as a unit, metadata, old files
DATA = FILES


def test_a_file_written_by_the_previous_code_loads_and_scores_as_it_did(monkeypatch):
    """model_format1_combined.safetensors and its expected outputs were written by lstmae before the
    scoring state became one object (the commit before `lstmae.scoring.state`); loading must give the same bits
    with the nearest-embedding search of that time (torch's), and the same scores to float rounding with
    the C search that replaced it on the CPU (each distance summed in another order)."""
    from lstmae import LSTMAutoencoder
    from lstmae.backends import kernels

    model = LSTMAutoencoder.load(DATA / "model_format1_combined.safetensors", device="cpu")
    expected = np.load(DATA / "model_format1_combined_expected.npz")
    assert model.metadata_ == {}
    assert model.threshold_ == float(expected["threshold"][0])
    np.testing.assert_allclose(model.anomaly_score(expected["test"]), expected["score"], rtol=1e-7, atol=0)
    monkeypatch.setattr(kernels, "searchable", lambda *tensors: False)
    np.testing.assert_array_equal(model.anomaly_score(expected["test"]), expected["score"])
    np.testing.assert_array_equal(model.encode(expected["test"]), expected["encode"])
    np.testing.assert_array_equal(model.reconstruct(expected["test"]), expected["reconstruct"])


@pytest.fixture(scope="module")
def small_model():
    import warnings

    from lstmae import LSTMAutoencoder

    x = np.sin(np.arange(200) / 3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LSTMAutoencoder(timesteps=8, units=4, epochs=1, random_state=0, verbose=0).fit(x), x


def test_metadata_is_stored_and_given_back_as_metadata_(small_model, tmp_path):
    from lstmae import LSTMAutoencoder

    model, x = small_model
    metadata = {"id_column": "user", "time_column": "day", "nested": {"n": [1, 2.5, None, True]}, "name": "café"}
    path = model.save(tmp_path / "m.safetensors", metadata=metadata)
    assert json.loads(read_header(path)["__metadata__"][METADATA_KEY])["metadata"] == metadata
    loaded = LSTMAutoencoder.load(path)
    assert loaded.metadata_ == metadata and isinstance(loaded.metadata_, dict)
    np.testing.assert_array_equal(loaded.anomaly_score(x), model.anomaly_score(x))
    # saving a loaded model again keeps its metadata unless new metadata is given
    assert LSTMAutoencoder.load(loaded.save(tmp_path / "again.safetensors")).metadata_ == metadata
    assert LSTMAutoencoder.load(loaded.save(tmp_path / "new.safetensors", metadata={"k": 1})).metadata_ == {"k": 1}


def test_no_metadata_gives_an_empty_dict(small_model, tmp_path):
    from lstmae import LSTMAutoencoder

    model, _ = small_model
    assert model.metadata_ == {}
    assert LSTMAutoencoder.load(model.save(tmp_path / "m.safetensors")).metadata_ == {}


@pytest.mark.parametrize(
    "metadata, match",
    [
        ({"when": object()}, r"metadata must be a mapping of JSON values, got .*; keep str, numbers"),
        ({"x": float("nan")}, r"metadata must be a mapping of JSON values, got .*; keep str, numbers"),
        ({1: "a"}, r"metadata must be a mapping with str keys"),
        (["a"], r"metadata must be a mapping with str keys \(a dict\), got list"),
    ],
)
def test_metadata_that_is_not_json_is_refused_before_writing(small_model, tmp_path, metadata, match):
    from lstmae.errors import ParameterError

    model, _ = small_model
    with pytest.raises(ParameterError, match=match):
        model.save(tmp_path / "m.safetensors", metadata=metadata)
    assert not (tmp_path / "m.safetensors").exists()


def test_the_scoring_state_round_trips_as_one_unit_and_scores_without_the_estimator(small_model, tmp_path):
    """What a streaming scorer or a fleet worker does: the network and the ScoringState, no estimator."""
    from lstmae import LSTMAutoencoder
    from lstmae.scoring.state import ScoringState

    model, x = small_model
    state = model.scoring_state_
    tensors, fields = state.to_tensors()
    again = ScoringState.from_tensors(tensors, json.loads(json.dumps(fields)), state.settings)
    assert again.settings == state.settings and again.threshold == state.threshold
    assert again.levels == state.levels and again.weights == state.weights
    for name in ("scaler_mean", "scaler_scale"):
        np.testing.assert_array_equal(getattr(again, name), getattr(state, name))
    np.testing.assert_array_equal(again.part("reconstruction").feature_levels, state.part("reconstruction").feature_levels)
    assert torch.equal(again.part("latent").reference, state.part("latent").reference)
    loaded = LSTMAutoencoder.load(model.save(tmp_path / "m.safetensors"))
    scores, _ = loaded.scoring_state_.score(loaded.module_, x[:, None], is_panel=False)
    np.testing.assert_array_equal(scores, model.anomaly_score(x))


def test_a_saved_model_has_the_permissions_of_any_file_the_user_writes(fitted_1d, tmp_path):
    """The umask decides, as for a CSV written next to it (safetensors alone leaves 0o600)."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        fitted_1d.save(tmp_path / "m.safetensors")
        (tmp_path / "t.csv").write_text("x\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.safetensors").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "m.safetensors").stat().st_mode) == stat.S_IMODE((tmp_path / "t.csv").stat().st_mode)


def test_a_file_without_aggregation_scores_as_window_and_a_new_one_keeps_peak(small_model, tmp_path):
    """Files are written with every parameter; one that lacks "aggregation" comes from before the parameter, when
    every model took the centred mean: it loads as "window", not as today's default "peak"."""
    import copy

    from lstmae import LSTMAutoencoder

    model, x = small_model
    assert model.aggregation == "peak"
    path = model.save(tmp_path / "m.safetensors")
    assert LSTMAutoencoder.load(path).aggregation == "peak"
    tensors, info = load_model(path)
    params = {k: v for k, v in info["params"].items() if k != "aggregation"}
    document = {k: v for k, v in info.items() if k not in ("format", "format_version", "lstmae_version", "tensors_sha256")}
    save_model(tmp_path / "old.safetensors", tensors, {**document, "params": params})
    old = LSTMAutoencoder.load(tmp_path / "old.safetensors")
    window = copy.copy(model).set_params(aggregation="window").anomaly_score(x)
    assert old.aggregation == "window"
    np.testing.assert_array_equal(old.anomaly_score(x), window)
    assert not np.array_equal(window, model.anomaly_score(x))  # the two aggregations differ on this series
