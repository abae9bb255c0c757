"""Device profiles and the published measurements."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from explorer import resolve
from explorer.db import Architecture, Measurement, open_database, resolve_device
from explorer.devices import (
    DeviceProfile,
    add_device,
    builtin_profiles,
    list_devices,
    load_published,
    profile_from_file,
    published_rows,
)
from search_spaces.base import KnobError

PUBLISHED = {"raspi5-ort", "jetson-tx2-trt", "iphone13-coreml", "titanrtx-torchscript-b1",
             "titanrtx-torchscript-b16", "a40-torch-b200", "mali-g76", "cortex-a53"}


@pytest.fixture
def db(tmp_path):
    return open_database(tmp_path / "m.db")


def test_builtin_profiles_cover_local_and_every_published_device():
    profiles = {p.name: p for p in builtin_profiles()}
    assert set(profiles) == PUBLISHED | {"local"}
    assert all(profiles[name].provenance == "published" and profiles[name].source for name in PUBLISHED)
    aliases = {a: p.name for p in profiles.values() for a in p.aliases}
    assert aliases == {"raspi5": "raspi5-ort", "jetson-tx2": "jetson-tx2-trt", "iphone13": "iphone13-coreml",
                       "titanrtx": "titanrtx-torchscript-b1", "a40": "a40-torch-b200"}
    assert profiles["a40-torch-b200"].default_batch == 200


def test_published_rows_parse_every_line():
    rows = published_rows()
    assert len(rows) == 157
    measurements = [r for r in rows if r.is_measurement]
    assert {r.device for r in measurements} == PUBLISHED
    assert {r.metric for r in rows} == {"params_m", "macs_m", "top1", "latency_ms", "throughput_img_s"}
    b0 = next(r for r in rows if (r.model, r.device, r.metric) == ("lowformer-b0", "raspi5-ort", "latency_ms"))
    assert (b0.resolution, b0.value, b0.source) == (224, 39.1, "Beyond MACs Table 7")


def test_load_published_attaches_rows_to_architectures_and_is_idempotent(db):
    with db.session() as session:
        first = load_published(session)
    with db.session() as session:
        again = load_published(session)
    expected = sum(r.is_measurement for r in published_rows())
    assert (first.loaded, first.existing, first.skipped) == (expected, 0, ())
    assert (again.loaded, again.existing) == (0, expected)
    with db.session() as session:
        rows = list(session.scalars(sa.select(Measurement)))
        assert len(rows) == expected and {r.provenance for r in rows} == {"published"}
        b1_raspi = next(r for r in rows if r.arch_id == resolve("lowformer-b1").arch_id and r.device == "raspi5-ort")
        assert (b1_raspi.median_ms, b1_raspi.value, b1_raspi.metric) == (59.1, 59.1, "latency_ms")
        b1_256 = resolve("lowformer-b1", 256).arch_id
        a40 = next(r for r in rows if r.arch_id == b1_256 and r.device == "a40-torch-b200")
        assert a40.value == 3378 and a40.median_ms == pytest.approx(1000 / 3378) and a40.batch == 200
        assert a40.metric == "throughput_img_s" and a40.source == "LowFormer Table 5"
        attention = session.get(Architecture, resolve("attention-stack-mhsa", 32).arch_id)
        assert attention.name == "attention-stack-mhsa" and attention.resolution == 32
        toy = next(r for r in rows if r.arch_id == resolve("toy-conv-1").arch_id)
        assert "layers per stage are unknown" in toy.note
        assert session.get(Architecture, toy.arch_id).exact is False
        assert "unknown" not in (b1_raspi.note or "")


def test_profile_validation_names_the_field():
    with pytest.raises(KnobError, match="provenance"):
        DeviceProfile(name="x", provenance="guessed")
    with pytest.raises(KnobError, match="default_batch"):
        DeviceProfile(name="x", default_batch=0)
    with pytest.raises(KnobError, match="colour"):
        DeviceProfile.from_dict({"name": "x", "colour": "red"})


def test_user_profiles_from_a_file_are_stored_and_resolvable(db, tmp_path):
    path = tmp_path / "board.json"
    path.write_text(json.dumps({"name": "rk3588", "hardware": "Rockchip RK3588", "default_threads": 4,
                                "aliases": ["rock5"]}))
    with db.session() as session:
        add_device(session, profile_from_file(path))
    with db.session() as session:
        device = resolve_device(session, "rock5")
        assert (device.name, device.default_threads, device.provenance) == ("rk3588", 4, "measured")
        assert "rk3588" in {d["name"] for d in list_devices(session)}
        with pytest.raises(KnobError, match="'raspi5'"):
            add_device(session, DeviceProfile(name="my-pi", aliases=("raspi5",)))
    path.write_text("not json")
    with pytest.raises(KnobError, match="file"):
        profile_from_file(path)
    with pytest.raises(KnobError, match="readable"):
        profile_from_file(tmp_path / "missing.json")
