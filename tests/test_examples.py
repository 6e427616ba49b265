"""The example sweep files under examples/: each loads, expands to the configurations it says, builds a
valid policy for every point, and one point of each trains for an epoch; examples/README.md lists them."""

from __future__ import annotations

from pathlib import Path

import pytest

from nets import explore as X

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

#: Every example file: (configurations, seeds, the point run for one epoch: keys that select it).
EXPECTED: dict[str, tuple[int, int, dict[str, object]]] = {
    "formats.toml": (8, 3, {"format": "fx<4,8>", "rounding": "stochastic"}),
    "accumulators.toml": (10, 3, {"acc": "fx<2,16>", "acc_overflow": "wrap"}),
    "block_formats.toml": (6, 3, {"mac": "mxfp4"}),
}
#: Per-layer search files (a [search] table, `nets.explore.search.SearchSpec`): their seeds.
SEARCHES: dict[str, int] = {"per_layer_search.toml": 3}


def _files() -> list[str]:
    return sorted(p.name for p in EXAMPLES.glob("*.toml"))


def test_every_example_file_is_expected_here_and_listed_in_the_readme() -> None:
    assert set(EXPECTED) | set(SEARCHES) <= set(_files())
    missing = [f for f in _files() if f not in EXPECTED and f not in SEARCHES]
    assert not missing, f"add {missing} to EXPECTED (configurations, seeds, the point to run) or SEARCHES"
    readme = (EXAMPLES / "README.md").read_text()
    for name in _files():
        assert f"]({name})" in readme, f"examples/README.md does not list {name}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_an_example_expands_to_valid_configurations(name: str) -> None:
    configs, seeds, _ = EXPECTED[name]
    sweep = X.Sweep.from_toml(EXAMPLES / name)
    assert sweep.name == name.removesuffix(".toml")
    assert len({X.config_key(p) for p in sweep.points}) == configs
    assert len(sweep.seeds()) == seeds
    assert len(sweep.points) == configs * seeds
    baselines = 0
    for p in sweep.points:
        policy = X.build_policy(p)
        arithmetic = [p[k] for k in ("policy", "mac", "acc") if p[k] is not None]
        if p["format"] == "float64" and not arithmetic:
            assert policy is None  # the float64 baseline
            baselines += 1
            continue
        assert policy is not None
        if p["acc"] is not None:
            assert str(policy.default.fwd_mac.acc) == p["acc"]
            assert policy.default.fwd_mac.acc_overflow.name.lower() == p["acc_overflow"]
        if p["mac"] is not None:
            assert policy.default.fwd_mac is not None
        if p["format"] not in (None, "float64"):
            assert p["format"] in policy.name
    assert baselines == seeds  # one float64 configuration, the report's baseline


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_one_point_of_an_example_trains(name: str) -> None:
    _, _, select = EXPECTED[name]
    sweep = X.Sweep.from_toml(EXAMPLES / name).override(seeds=[0], epochs=1)
    (point,) = [p for p in sweep.points if all(p[k] == v for k, v in select.items())]
    res = X.run_point(point)
    assert res["status"] == "done", res.get("reason") or res.get("error")
    assert res["test_accuracy"] > res["chance_accuracy"]
    if point["acc_overflow"] == "wrap" and point["acc"] == "fx<2,16>":
        assert res["acc_overflow_rate"] > 0  # a 2-integer-bit register overflows on these data


@pytest.mark.parametrize("name", sorted(SEARCHES))
def test_a_search_example_reads_as_a_search_spec_the_command_line_takes(name: str, tmp_path: Path) -> None:
    """The spec loads with every field checked, its baseline builds, and the command line refuses a bad
    flag before running anything (the search itself is tested in tests/nets/test_search.py)."""
    from nets.__main__ import main
    from nets.explore.search import SearchSpec

    spec = SearchSpec.from_toml(EXAMPLES / name)
    assert len(spec.seeds) == SEARCHES[name]
    assert spec.tolerance > 0
    with pytest.raises(SystemExit, match="--workers=0 must be at least 1"):
        main(["search", str(EXAMPLES / name), "--out", str(tmp_path), "--workers", "0"])
