"""Every preset states its straight-through rule (a field it sets, its docstring, docs/training.md) and
keeps the optimiser's and batch normalisation's roles as its docstring says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import nets
from nets.policy import BN_ROLES, OPTIMIZER_ROLES, STE, PrecisionPolicy
from nets.presets import POLICY_PRESETS

DOC = Path(__file__).resolve().parents[2] / "docs" / "training.md"


def _doc_rows() -> dict[str, list[str]]:
    """The presets table of docs/training.md: preset name -> its cells."""
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]  # "\|" is a cell's "|"
        if line.startswith("| `") and len(cells) == 5:
            rows[cells[0].strip("`")] = cells
    return rows


@pytest.mark.parametrize("name", list(POLICY_PRESETS))
def test_every_preset_states_its_straight_through_rule(name: str) -> None:
    pol = PrecisionPolicy.preset(name)
    doc = POLICY_PRESETS[name].__doc__ or ""
    assert f"STE: {pol.ste}" in doc
    other = next(s for s in STE if s is not pol.ste)
    assert f"STE: {other}" not in doc
    row = _doc_rows()[name]
    assert row[2] == str(pol.ste)
    assert row[1]  # what it reproduces


def test_the_docs_table_lists_exactly_the_presets() -> None:
    assert list(_doc_rows()) == list(POLICY_PRESETS)
    assert POLICY_PRESETS is nets.POLICY_PRESETS is nets.policy.POLICY_PRESETS


def test_clipped_is_documented_as_this_projects_extension() -> None:
    doc = STE.__doc__ or ""
    assert "``clipped`` is this project's extension" in doc
    assert "this project's extension" in DOC.read_text()
    # a preset whose paper says nothing keeps the extension; one whose reference code back-propagates
    # through saturation plainly uses identity
    assert PrecisionPolicy.preset("gupta fx<4,12> stochastic").ste is STE.CLIPPED
    assert PrecisionPolicy.preset("courbariaux dfx 10/12").ste is STE.IDENTITY


@pytest.mark.parametrize(("name", "kept"), [
    ("gupta fx<4,12> stochastic", (*OPTIMIZER_ROLES, *BN_ROLES)),
    ("gupta fx<4,12> nearest", (*OPTIMIZER_ROLES, *BN_ROLES)),
    ("courbariaux dfx 10/12", ("update", "momentum")),
    ("fp16", ("update", "bn_params")),
    ("bf16", ("update", "bn_params")),
    ("fp32", (*OPTIMIZER_ROLES, *BN_ROLES)),
    ("e4m3 forward / e5m2 backward", ("update",)),
    ("mxfp8 forward / mxfp8_e5m2 backward", ("update",)),
    ("mxfp4 forward / mxfp8_e5m2 backward", ("update",)),
    ("nvfp4 (nvidia 2025)", ("update",)),
    ("binaryconnect det", ()),
    ("binaryconnect stochastic", ()),
    ("binarized", ()),
    ("twn", ()),
])
def test_presets_store_the_optimizer_state_as_their_papers_do(name: str, kept: tuple[str, ...]) -> None:
    """The roles listed are converted; the other optimiser and batch normalisation roles stay float64, and
    the docstring's "float64" paragraph or the docs table names them."""
    lp = PrecisionPolicy.preset(name).default
    for role in (*OPTIMIZER_ROLES, *BN_ROLES):
        assert getattr(lp, role).is_float64 == (role not in kept), (name, role)
    row = _doc_rows()[name]
    for role in (*OPTIMIZER_ROLES, *BN_ROLES):
        if role not in kept and "all roles but `weights`" not in row[3]:
            assert f"`{role}`" in row[3], (name, role)


@pytest.mark.parametrize("name", ["e4m3 forward / e5m2 backward", "mxfp8 forward / mxfp8_e5m2 backward",
                                  "mxfp4 forward / mxfp8_e5m2 backward"])
def test_fp8_and_mx_presets_keep_weight_gradients_as_a_products_fp32_output(name: str) -> None:
    """Micikevicius et al. 2022 and Rouhani et al. 2023 cast only the inputs of products to FP8 or MX: the
    weight gradient, a product's output used by the optimiser, stays in fp32; the errors, inputs of the
    next backward products, are e5m2."""
    lp = PrecisionPolicy.preset(name).default
    assert str(lp.grads) == "fp32"
    assert "e5m2" in str(lp.errors)
