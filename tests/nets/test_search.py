"""Per-layer search (nets.explore.search): the spec refuses bad fields; greedy descent on the digits MLP
and the sensitivity-ordered descent on digits LeNet-5 end at or below the best uniform configuration's
energy within the same tolerance (or the report says why not); every point goes through the store, so
a rerun runs nothing; the greedy accepts the most saving move of each round; the sensitivity order
follows the probes; `Workers` keep processes across `run_sweep` calls."""

from __future__ import annotations

import io
import math
import os
import re
from pathlib import Path

import pytest

from nets.explore import Store, Sweep, point_key, run_point, run_sweep
from nets.explore import search as search_module
from nets.explore.run import Workers
from nets.explore.search import (
    Knob,
    LayerWidths,
    Method,
    SearchResult,
    SearchSpec,
    layer_policy,
    run_search,
    run_search_point,
    search_report,
)

MLP = {"setup": {"sizes": [64, 32, 10], "epochs": 3}, "tolerance": 1.0, "weight_bits": [8, 6, 4, 3],
       "act_bits": [8, 6, 5], "acc_bits": [], "seeds": [0, 1], "method": "greedy"}
#: LeNet-5 trains slowly under emulation (about 0.7 s a point): its search lowers weights only
LENET = {"setup": {"model": "lenet5", "epochs": 2, "lr": 0.05}, "tolerance": 1.0, "weight_bits": [8, 4, 3],
         "act_bits": [8], "seeds": [0, 1], "method": "sensitivity"}


@pytest.mark.parametrize(("change", "field"), [
    ({"tolerance": -1.0}, "tolerance"), ({"tolerance": 100}, "tolerance"),
    ({"weight_bits": []}, "weight_bits"), ({"weight_bits": [8, 8]}, "weight_bits"),
    ({"act_bits": [4]}, "act_bits"), ({"acc_bits": [1]}, "acc_bits"),
    ({"method": "random"}, "method"), ({"objective": "speed"}, "objective"),
    ({"criterion": "median"}, "criterion"), ({"seeds": []}, "seeds"), ({"seeds": [0, 0]}, "seeds"),
    ({"weight_int_bits": 0}, "weight_int_bits"), ({"name": ""}, "name"),
    ({"setup": {"model": "vgg"}}, "setup/baseline"), ({"setup": {"format": "bf16"}}, "setup"),
    ({"baseline": {"epochs": 2}}, "baseline"), ({"baseline": {"format": "fx<99"}}, "setup/baseline"),
], ids=lambda v: v if isinstance(v, str) else "-".join(map(str, v)))
def test_the_spec_refuses_bad_fields_naming_them(change: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"SearchSpec: {field}"):
        SearchSpec.from_dict({**MLP, **change})


@pytest.mark.parametrize(("change", "match"), [
    ({"tolerance": "1"}, r"tolerance='1' must be a number of accuracy points in \[0, 100\)$"),
    ({"act_bits": 8}, r"act_bits=8 must be a non-empty list of widths in bits \(ints in \[5, 32\]\)$"),
    ({"acc_bits": 16}, r"acc_bits=16 must be a list of widths in bits \(ints in \[2, 62\]\)$"),
    ({"weight_bits": ["8"]}, r"weight_bits='8' must be an int"),
    ({"name": 3}, r"name=3 must be a non-empty string$"),
    ({"seeds": 3}, r"seeds=3 must be a non-empty list of seeds \(ints >= 0\)$"),
    ({"setup": [1]}, r"setup=\[1\] must be a table of point keys$"),
    ({"baseline": None}, r"baseline=None must be a table of point keys$"),
], ids=lambda v: v if isinstance(v, str) else "-".join(map(str, v)))
def test_the_spec_refuses_fields_of_the_wrong_type_with_a_type_error(change: dict, match: str) -> None:
    with pytest.raises(TypeError, match=rf"^SearchSpec: {match}"):
        SearchSpec.from_dict({**MLP, **change})


def test_the_spec_from_a_dict_refuses_what_is_not_one() -> None:
    with pytest.raises(TypeError, match=r"^SearchSpec\.from_dict: d=\[1\] must be a dict of the spec's"
                                        r" fields$"):
        SearchSpec.from_dict([1])  # type: ignore[arg-type]


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"workers": 0}, ValueError, r"^run_search: workers=0 outside the allowed range \[1, "),
    ({"workers": 1.5}, TypeError, r"^run_search: workers=1\.5 must be an int"),
    ({"dask": "nowhere"}, ValueError, r"^run_search: dask='nowhere' must be False \(local workers\), True"),
    ({"stream": 3}, TypeError, r"^run_search: stream=3 must be None \(stderr\) or a text stream with"
                               r" write\(\)$"),
    ({"spec": None}, TypeError, r"^run_search: spec=None must be a SearchSpec \(SearchSpec\.from_dict or"),
], ids=str)
def test_run_search_checks_its_arguments_before_it_opens_the_store(tmp_path: Path, kwargs: dict,
                                                                   error: type, match: str) -> None:
    path = tmp_path / "x.sqlite"
    args = {"spec": SearchSpec(), "store": path, **kwargs}
    with pytest.raises(error, match=match):
        run_search(**args)
    assert not path.exists()


def test_run_search_refuses_a_store_that_is_neither_a_store_nor_a_path() -> None:
    with pytest.raises(TypeError, match=r"^run_search: store=3 must be a Store or the path of its results"
                                        r" file$"):
        run_search(SearchSpec(), 3)  # type: ignore[arg-type]


def test_search_report_refuses_what_is_not_a_search_result() -> None:
    with pytest.raises(TypeError, match=r"^search_report: r=None must be a SearchResult \(as run_search"
                                        r" gives\)$"):
        search_report(None)  # type: ignore[arg-type]


def test_the_spec_refuses_unknown_keys_and_reads_a_search_table(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SearchSpec: unknown keys budget"):
        SearchSpec.from_dict({**MLP, "budget": 1})
    f = tmp_path / "mlp_search.toml"
    f.write_text('[search]\nmethod = "sensitivity"\nobjective = "area"\ntolerance = 0.5\nseeds = [3]\n'
                 'weight_bits = [6, 8]\nact_bits = [8]\nacc_bits = [20, 24]\n'
                 '[search.setup]\nsizes = [64, 8, 10]\nepochs = 1\n[search.baseline]\nformat = "fx<4,12>"\n')
    s = SearchSpec.from_toml(f)
    assert (s.name, str(s.method), str(s.objective)) == ("mlp_search", "sensitivity", "area")
    assert s.tolerance == 0.5
    assert (s.weight_bits, s.acc_bits, s.seeds) == ((8, 6), (24, 20), (3,))
    assert s.baseline_point(0)["format"] == "fx<4,12>"
    assert s.baseline_point(0)["sizes"] == [64, 8, 10]
    (tmp_path / "none.toml").write_text('[sweep]\nname = "x"\n')
    with pytest.raises(ValueError, match=r"SearchSpec.from_toml: .*none.toml has no \[search\] table"):
        SearchSpec.from_toml(tmp_path / "none.toml")
    (tmp_path / "bad.toml").write_text('[search]\nweight_bits = [6, 8]\nbudget = 3\n')
    with pytest.raises(ValueError, match=r"bad\.toml: \[search\] SearchSpec: unknown keys budget"):
        SearchSpec.from_toml(tmp_path / "bad.toml")


def test_a_layer_profile_is_part_of_the_point_and_its_key() -> None:
    base = SearchSpec.from_dict(MLP).baseline_point(0)
    layers = {"linear1": {"weights": "fx<2,6>", "activations": "fx<4,4>", "acc": "fx<8,10>",
                          "acc_overflow": "saturate"},
              "linear2": {"weights": "fx<2,6>", "activations": "fx<4,4>", "acc": "fx<10,10>",
                          "acc_overflow": "saturate"}}
    a = {**base, "layers": layers}
    b = {**base, "layers": {**layers, "linear2": {**layers["linear2"], "weights": "fx<2,4>"}}}
    assert len({point_key(base), point_key(a), point_key(b)}) == 3
    pol = layer_policy(b)
    assert str(pol.for_layer("linear2").weights) == "fx<2,4>"
    assert str(pol.forward_mac("linear1", 64)) == "fx<4,4> x fx<2,6> -> fx<8,10> (saturate, sequential)"
    assert str(pol.for_layer("linear1").activations) == "float64"  # the float64 baseline's other roles
    assert layer_policy(base) is None  # no layers: the baseline's own policy
    bad = {**base, "layers": {"linear1": {**layers["linear1"], "acc": "fx<99"}}}
    res = run_search_point(bad)
    assert res["status"] == "failed"
    assert "fx<99" in res["error"]


def _check(r: SearchResult) -> str:
    """The assertions every search must meet; returns its report."""
    text = search_report(r)
    assert r.evaluation.within
    assert r.uniform is not None
    assert r.uniform_evaluation is not None
    assert r.cost(r.evaluation) <= r.cost(r.uniform_evaluation)
    assert r.uniform_evaluation.within
    if r.beats_uniform:
        assert r.note == ""
        assert "less than the best uniform configuration" in text
    else:
        assert r.note.startswith("The per-layer profile does not beat the best uniform configuration: ")
        assert r.note in text
    for name, w, a, acc, _e, share in r.layers:
        assert f"| {name} | {w} | {a} | {acc} |" in text
        assert 0 < share < 1
    assert math.isclose(sum(row[4] for row in r.layers), r.evaluation.energy_pj)
    # every uniform configuration cheaper than the best one was evaluated and is outside
    cheaper = [e for p, e in r.uniform_tried if r.cost(e) < r.cost(r.uniform_evaluation)]
    assert all(not e.within for e in cheaper)
    assert f"{r.new_runs} point(s) run now, {r.from_store} taken from the store." in text
    return text


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[SearchResult, Path]:
    path = tmp_path_factory.mktemp("search") / "mlp.sqlite"
    return run_search(SearchSpec.from_dict(MLP), path, workers=1), path


def test_greedy_on_the_digits_mlp_reaches_the_best_uniform_energy_or_says_why(
        mlp_run: tuple[SearchResult, Path]) -> None:
    r, path = mlp_run
    text = _check(r)
    assert r.new_runs > 0
    assert r.from_store == 0
    assert "Per-layer search: search" in text
    assert "paired mean over seeds 0, 1" in text
    with Store(path) as st:
        rows = st.rows()
    assert len(rows) == r.new_runs
    assert all(row["status"] in ("done", "diverged") for row in rows)
    assert any("layers" in row["params"] for row in rows)


def test_the_greedy_accepts_the_most_saving_move_within_tolerance(mlp_run: tuple[SearchResult, Path]) -> None:
    r, _ = mlp_run
    rounds: dict[tuple[str, int], list] = {}
    for st in r.steps:
        rounds.setdefault((st.phase, st.round), []).append(st)
    assert rounds
    for steps in rounds.values():
        ok = [st for st in steps if st.evaluation.within]
        accepted = [st for st in steps if st.accepted]
        assert len(accepted) == (1 if ok else 0)
        if ok:
            assert accepted[0].evaluation.energy_pj == min(st.evaluation.energy_pj for st in ok)
        for st in steps:
            assert st.new is not None
            assert st.old is not None
            assert st.new < st.old


def test_a_rerun_takes_every_point_from_the_store(mlp_run: tuple[SearchResult, Path]) -> None:
    r, path = mlp_run
    again = run_search(SearchSpec.from_dict(MLP), path, workers=2)
    assert again.new_runs == 0
    assert again.from_store == r.new_runs
    assert again.profile == r.profile
    assert again.uniform == r.uniform
    assert again.evaluation.acc_by_seed == r.evaluation.acc_by_seed
    assert [(s.layer, s.knob, s.new, s.accepted) for s in again.steps] == \
        [(s.layer, s.knob, s.new, s.accepted) for s in r.steps]


def test_sensitivity_search_on_digits_lenet(tmp_path: Path) -> None:
    r = run_search(SearchSpec.from_dict(LENET), tmp_path / "lenet.sqlite", workers=2, stream=io.StringIO())
    _check(r)
    assert r.spec.method is Method.SENSITIVITY
    probes = [st for st in r.steps if st.phase == "probe"]
    assert len(probes) == 5  # five layers' weights
    assert [n for n, *_ in r.layers] == ["conv2d1", "conv2d2", "linear1", "linear2", "linear3"]

    def drop(st: object) -> float:
        e = st.evaluation  # type: ignore[attr-defined]
        return math.inf if e.problems or e.diff is None else -e.diff.mean

    # ties (equal drops, whatever their float rounding): the larger saving first
    ranked = sorted(probes, key=lambda st: (round(drop(st), 9), st.evaluation.energy_pj))
    order = list(dict.fromkeys((st.layer, st.knob) for st in r.steps if st.phase == "descent"))
    positions = [next(i for i, p in enumerate(ranked) if (p.layer, p.knob) == o) for o in order]
    assert positions == sorted(positions)  # knobs lowered least sensitive first
    for st in r.steps:
        if st.phase != "probe":
            assert st.accepted == st.evaluation.within


def test_the_interval_criterion_needs_the_whole_interval_within(tmp_path: Path) -> None:
    spec = SearchSpec(setup={"sizes": [64, 8, 10], "epochs": 2}, tolerance=3.0, weight_bits=[8, 4],
                      act_bits=[8, 5], seeds=[0, 1, 2], criterion="interval", objective="area")
    r = run_search(spec, tmp_path / "interval.sqlite", workers=1)
    assert "paired interval over seeds 0, 1, 2" in search_report(r)
    for st in [*r.steps, None]:
        e = r.evaluation if st is None else st.evaluation
        if e.within:
            assert e.diff is not None
            assert e.diff.lo >= -0.03 - 1e-12
        elif not e.problems:
            assert e.diff is not None
            assert e.diff.lo < -0.03
    # the interval rule is stricter: it refused a move whose paired mean the mean rule would have taken
    assert any(not st.evaluation.within and st.evaluation.diff.mean >= -0.03 for st in r.steps)
    assert r.evaluation.within
    assert r.cost(r.evaluation) <= r.cost(r.uniform_evaluation)


def test_workers_are_kept_across_sweeps_and_their_job_is_checked() -> None:
    s = Sweep.from_dict({"base": {"sizes": [64, 8, 10], "epochs": 1}, "grid": {"format": ["bf16"]},
                         "seeds": [0, 1]})
    with Workers(1, job=run_search_point) as w, Store(":memory:") as st:
        a = run_sweep(Sweep(s.name, s.points[:1]), st, workers=w, progress=False, job=run_search_point)
        b = run_sweep(s, st, workers=w, progress=False, job=run_search_point)
        assert (a.done, b.done, b.skipped) == (1, 1, 1)
        with pytest.raises(ValueError, match="run_sweep: job=.* is not the job of the Workers given"):
            run_sweep(s, st, workers=w, progress=False, job=abs)
    with pytest.raises(ValueError, match="Workers: job=3 is not callable"):
        Workers(1, job=3)  # type: ignore[arg-type]
    assert run_point is not run_search_point


def test_accumulator_moves_keep_every_product_and_stay_below_lossless(tmp_path: Path) -> None:
    # fx<2,6> x fx<4,4>: products fx<6,10> (16 bits); lossless: linear1 (K = 64) 22 bits, linear2 (K = 8) 19
    spec = SearchSpec(setup={"sizes": [64, 8, 10], "epochs": 1}, tolerance=50.0, weight_bits=[8],
                      act_bits=[8], acc_bits=[14, 16, 20], seeds=[0], objective="area")
    r = run_search(spec, tmp_path / "acc.sqlite", workers=1)
    moves = {(st.layer, st.old, st.new) for st in r.steps}
    assert all(st.knob is Knob.ACC for st in r.steps)
    assert moves <= {("linear1", None, 20), ("linear1", 20, 16), ("linear2", None, 16)}
    assert ("linear1", None, 20) in moves
    assert ("linear2", None, 16) in moves
    assert dict(r.start)["linear1"] == LayerWidths(8, 8, None)
    if r.evaluation.within and dict(r.profile)["linear1"].acc == 16:
        assert [row[3] for row in r.layers][0] == "fx<6,10> (16 bits)"


def test_a_fixed_point_baseline_gives_each_searched_layer_one_activation_format() -> None:
    """Under a baseline whose activations role is not float64, a searched layer's activations role takes
    its datapath's operand format (a policy refuses two formats for one operand)."""
    base = SearchSpec.from_dict({**MLP, "baseline": {"format": "fx<4,8>"}}).baseline_point(0)
    layers = {"linear1": {"weights": "fx<2,6>", "activations": "fx<4,4>", "acc": "fx<8,10>",
                          "acc_overflow": "saturate"}}
    pol = layer_policy({**base, "layers": layers})
    assert str(pol.for_layer("linear1").activations) == "fx<4,4>"
    assert str(pol.for_layer("linear2").activations) == "fx<4,8>"  # not searched: the baseline's


def _ev(diff: float, within: bool, energy: float = 10.0):
    from nets.explore.search import Evaluation
    from nets.stats import mean_ci

    return Evaluation({0: 0.9, 1: 0.9}, {}, mean_ci([0.9, 0.9]), mean_ci([diff, diff + 0.001]), energy, 1.0,
                      within)


def test_the_note_states_what_was_measured_from_the_final_profile() -> None:
    """A greedy descent from the widest profile (not restarted) that ends, as costly as the best uniform
    configuration, at it: the note names where the descent started, lists only the moves evaluated from
    the final profile (each outside the tolerance), and counts apart the moves rejected from earlier
    profiles; a move that was within but not the best of its round is not called outside."""
    from nets.explore.search import LayerWidths, SearchResult, SearchSpec, Step, _note

    spec = SearchSpec.from_dict(MLP)
    wide = (("linear1", LayerWidths(8, 8)), ("linear2", LayerWidths(8, 8)))
    mid = (("linear1", LayerWidths(6, 8)), ("linear2", LayerWidths(8, 8)))
    final = (("linear1", LayerWidths(6, 8)), ("linear2", LayerWidths(6, 8)))
    steps = [Step("descent", 1, "linear1", "weights", 8, 6, _ev(-0.002, True), True, wide),
             Step("descent", 1, "linear2", "weights", 8, 6, _ev(-0.003, True), False, wide),  # not the best
             Step("descent", 1, "linear1", "activations", 8, 6, _ev(-0.05, False), False, wide),
             Step("descent", 2, "linear2", "weights", 8, 6, _ev(-0.003, True), True, mid),
             Step("descent", 3, "linear2", "activations", 8, 6, _ev(-0.04, False), False, final)]
    base = _ev(0.0, True)
    r = SearchResult(spec, base, wide, base, final, base, final, base, [(final, base)], steps, [], 0, 0,
                     False, "")
    note = _note(r)
    assert note.startswith("The per-layer profile does not beat the best uniform configuration: the descent"
                           " from the widest profile ended at the best uniform configuration itself; from it,"
                           " 1 single-layer move(s)")
    assert "none is within 1 point(s) by the mean criterion (linear2 activations 8 -> 6 bits: -3.95" in note
    assert ("; 1 move(s) outside the tolerance from earlier profiles of the descent (linear1 activations"
            in note)
    assert "linear2 weights" not in note  # within tolerance: never listed as outside
    restarted = SearchResult(spec, base, wide, base, final, base, final, base, [(final, base)],
                             [Step("from uniform", 1, "linear2", "activations", 8, 6, _ev(-0.04, False),
                                   False, final)], [], 0, 0, True, "")
    assert "the descent from the best uniform configuration ended at" in _note(restarted)


def test_the_spec_refuses_an_interval_of_one_seed_and_wrong_types_of_setup_keys() -> None:
    with pytest.raises(ValueError, match=r"^SearchSpec: criterion='interval' needs two seeds or more;"
                                         r" seeds=\[0\] has one"):
        SearchSpec.from_dict({**MLP, "criterion": "interval", "seeds": [0]})
    for key in ("mac", "policy"):  # a number where a preset's name belongs: refused by name, no traceback
        with pytest.raises(TypeError, match=rf"^SearchSpec: setup/baseline: sweep point 0: {key}=5: .*must be"
                                            r" a preset's name \(a string\)"):
            SearchSpec.from_dict({**MLP, "baseline": {key: 5}})
    with pytest.raises(ValueError, match=r"^SearchSpec: setup/baseline: sweep point 0: epochs=0 outside the"
                                         r" allowed range \[1, inf\)"):
        SearchSpec.from_dict({**MLP, "setup": {"sizes": [64, 8, 10], "epochs": 0}})


@pytest.mark.parametrize(("text", "match"), [
    ("[search]\nseeds = [0]\n[setup]\nepochs = 1\n", r"\[setup\] should be \[search\.setup\]"),
    ("seeds = [0]\n[search]\n", r"seeds should be under \[search\]"),
    ("time_limit = 5\n[search]\n[baseline]\nformat = 'bf16'\n",
     r"key time_limit is outside \[search\]; \[baseline\] should be \[search\.baseline\]"),
    ("[search]\n[other]\nx = 1\n", r"table \[other\] is outside \[search\]"),
], ids=["setup", "seeds", "time_limit", "table"])
def test_a_spec_file_refuses_anything_beside_its_search_table(tmp_path: Path, text: str, match: str) -> None:
    f = tmp_path / "stray.toml"
    f.write_text(text)
    with pytest.raises(ValueError, match=rf"^SearchSpec.from_toml: {re.escape(str(f))}: {match}; the spec"
                                         r" lives under \[search\]"):
        SearchSpec.from_toml(f)
    f.write_text("[search]\n[search.baseline]\nmac = 5\n")  # a wrong type is a ValueError naming the file
    with pytest.raises(ValueError, match=rf"^{re.escape(str(f))}: \[search\] SearchSpec: setup/baseline:"
                                         r" sweep point 0: mac=5"):
        SearchSpec.from_toml(f)


#: when set, `made_up_job` fails every point whose linear2 activations are narrowed
FAIL_ENV = "SEARCH_TEST_FAIL"
#: test images (of 270) lost at seeds 0 and 1 by each knob of the 64-8-10 MLP at its narrower candidate:
#: both weights lose 2 images in all, linear1's as 1 + 1 and linear2's as 0 + 2, so their paired drops are
#: one number whose float sums differ in the last bits
LOST = {("linear1", "weights"): (1, 1), ("linear2", "weights"): (0, 2),
        ("linear1", "activations"): (20, 20), ("linear2", "activations"): (20, 20)}
NARROW = {"weights": "fx<2,2>", "activations": "fx<4,2>"}  # 4-bit weights, 6-bit activations
MADE_UP = {"setup": {"sizes": [64, 8, 10], "epochs": 1}, "tolerance": 5.0, "weight_bits": [8, 4],
           "act_bits": [8, 6], "seeds": [0, 1], "method": "sensitivity"}


def made_up_job(point: dict) -> dict:
    """A made-up search point at once (no training): 252 of 270 test images right, less `LOST` for each
    narrowed knob; with `FAIL_ENV` set, a point with linear2's activations narrowed raises."""
    lost = 0
    for name, formats in (point.get("layers") or {}).items():
        for knob, fmt in NARROW.items():
            if formats[knob] == fmt:
                if os.environ.get(FAIL_ENV) and (name, knob) == ("linear2", "activations"):
                    raise RuntimeError("made-up failure")
                lost += LOST[name, knob][point["seed"]]
    return {"status": "done", "test_accuracy": (252 - lost) / 270, "seed": point["seed"]}


@pytest.fixture(scope="module")
def made_up_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[SearchResult, Path]:
    path = tmp_path_factory.mktemp("made_up") / "search.sqlite"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(search_module, "run_search_point", made_up_job)
        return run_search(SearchSpec.from_dict(MADE_UP), path, workers=1), path


def test_probes_that_drop_the_same_number_of_images_tie_and_the_larger_saving_goes_first(
        made_up_run: tuple[SearchResult, Path]) -> None:
    r, _ = made_up_run
    probes = {(st.layer, str(st.knob)): st.evaluation for st in r.steps if st.phase == "probe"}
    w1, w2 = probes["linear1", "weights"], probes["linear2", "weights"]
    assert w1.diff is not None
    assert w2.diff is not None
    assert w1.diff.mean != w2.diff.mean  # one drop of 2 images in 540, summed in two orders
    assert math.isclose(w1.diff.mean, -1 / 270)
    assert math.isclose(w2.diff.mean, -1 / 270)
    assert -w1.diff.mean > -w2.diff.mean  # as floats linear2's drop is the smaller ...
    assert w1.energy_pj < w2.energy_pj  # ... but linear1's saving is the larger: it goes first
    order = list(dict.fromkeys((st.layer, str(st.knob)) for st in r.steps if st.phase == "descent"))
    assert order[:2] == [("linear1", "weights"), ("linear2", "weights")]
    assert r.failed_points == 0
    assert "No point failed." in search_report(r)


def test_what_a_search_evaluates_and_reports_does_not_depend_on_its_workers(
        made_up_run: tuple[SearchResult, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    r, path = made_up_run
    monkeypatch.setattr(search_module, "run_search_point", made_up_job)
    again = run_search(SearchSpec.from_dict(MADE_UP), path, workers=3)
    assert again.new_runs == 0  # the uniform configurations evaluated with 1 worker, no more
    assert [p for p, _ in again.uniform_tried] == [p for p, _ in r.uniform_tried]
    first, second = search_report(r).splitlines(), search_report(again).splitlines()
    assert first[:-1] == second[:-1]  # all but the line counting the points run now and from the store


def test_failed_points_make_the_command_exit_1_until_retry_failed_runs_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import nets.__main__ as cli

    with pytest.raises(TypeError, match=r"^run_search: retry_failed='yes' must be True or False$"):
        run_search(SearchSpec.from_dict(MADE_UP), tmp_path / "x.sqlite", retry_failed="yes")  # type: ignore
    monkeypatch.setattr(search_module, "run_search_point", made_up_job)
    f = tmp_path / "made_up.toml"
    f.write_text('[search]\nmethod = "sensitivity"\ntolerance = 5.0\nseeds = [0, 1]\nweight_bits = [8, 4]\n'
                 'act_bits = [8, 6]\n[search.setup]\nsizes = [64, 8, 10]\nepochs = 1\n')
    out = tmp_path / "out"
    args = ["search", str(f), "--out", str(out), "--workers", "1"]
    monkeypatch.setenv(FAIL_ENV, "1")
    with pytest.raises(SystemExit, match="^1$"):
        cli.main(args)
    with Store(out / "search.sqlite") as st:
        failed = len(st.rows(status="failed"))
    assert failed > 0
    line = capsys.readouterr().err.splitlines()[-1]
    assert line == (f"nets search: {failed} point(s) failed (see {out / 'search.md'}); after fixing the"
                    " cause, --retry-failed runs them again")
    assert f"{failed} point(s) of the search are recorded as failed" in (out / "search.md").read_text()
    monkeypatch.delenv(FAIL_ENV)  # the cause is fixed
    with pytest.raises(SystemExit, match="^1$"):  # still failed: taken from the store unless retried
        cli.main(args)
    assert "0 points run" in capsys.readouterr().err
    cli.main([*args, "--retry-failed"])  # exits 0
    assert f"{failed} points run, " in capsys.readouterr().err
    assert "No point failed." in (out / "search.md").read_text()
    with Store(out / "search.sqlite") as st:
        assert {r["status"] for r in st.rows()} == {"done"}
