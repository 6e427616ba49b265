"""hwmodel: unknown areas, repeated layer names, operand order, published tables, the Kulisch width at K = 1
and the settings files' errors, each as docs/hwmodel.md states it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import emu
import hwmodel
from hwmodel import Entry, TechTable, gates


def test_a_table_without_areas_gives_unknown_speedups_at_equal_area() -> None:
    """jouppi7 has no areas: the speedups at equal area are NaN (not infinite), the energy saving is known,
    and the network's table says the area is unknown."""
    s = hwmodel.mac_speedup("int8 x int8 -> int32", tech="jouppi7")
    assert math.isnan(s.equal_area)
    assert math.isnan(s.area_delay)
    assert s.energy_saving > 1
    j = hwmodel.get_table("jouppi7")
    t = TechTable("j7 with memories", 7, "jouppi7 + memories", {**j.ops, "sram_32kb": Entry(8.5),
                                                                 "dram": Entry(1950.0)})
    fc = hwmodel.LayerSpec("fc", "linear", 640, 650, 64, 10, 64, "int8 x int8 -> int32")
    nc = hwmodel.network_cost([fc], tech=t)
    assert math.isnan(nc.area_um2)
    assert math.isnan(nc.speedup_equal_area)
    assert "area unknown (j7 with memories has no areas)" in nc.table()
    assert "infx" not in nc.table()


def test_layers_of_one_name_are_refused() -> None:
    a = hwmodel.LayerSpec("fc", "linear", macs=100, weights=100, activations_in=10, activations_out=10, k=10)
    b = hwmodel.LayerSpec("fc", "linear", macs=10000, weights=10000, activations_in=100, activations_out=100,
                          k=100)
    with pytest.raises(ValueError, match=r"^network_cost: layer name\(s\) \['fc'\] appear more than once"):
        hwmodel.network_cost([a, b])
    c = hwmodel.network_cost([a, hwmodel.LayerSpec("fc2", "linear", 10000, 10000, 100, 100, 100)])
    assert [r.weight_bits for r in c.layers] == [3200, 320000]


@pytest.mark.parametrize("kind", ["dadda", "array", "booth"])
@pytest.mark.parametrize(("wa", "wb"), [(4, 12), (3, 16), (8, 9), (1, 7)])
def test_the_multiplier_costs_the_same_for_either_operand_order(kind: str, wa: int, wb: int) -> None:
    assert gates.multiplier(wa, wb, kind) == gates.multiplier(wb, wa, kind)
    a = hwmodel.cost(emu.MAC(act=f"fx<1,{wa - 1}>", weight=f"fx<1,{wb - 1}>", acc="fx<20,14>",
                             acc_overflow="wrap"), multiplier=kind)
    b = hwmodel.cost(emu.MAC(act=f"fx<1,{wb - 1}>", weight=f"fx<1,{wa - 1}>", acc="fx<20,14>",
                             acc_overflow="wrap"), multiplier=kind)
    assert (a.energy_pj, a.area_um2, a.delay) == (b.energy_pj, b.area_um2, b.delay)


def test_the_narrower_operand_gives_the_rows() -> None:
    """A 12 x 4 array multiplier adds 3 rows of 12 bits (3 half adders), a Booth multiplier recodes the
    4-bit operand (3 partial products)."""
    assert gates.multiplier(4, 12, "array") == gates.array_multiplier(12, 4)
    assert gates.array_multiplier(12, 4).ha == 3
    assert gates.multiplier(12, 4, "booth") == gates.booth_multiplier(12, 4)


def test_a_published_table_is_not_replaced(tmp_path: Path) -> None:
    f = tmp_path / "shadow.toml"
    f.write_text('name = "horowitz45"\nnode_nm = 28\nsource = "my synthesis"\n'
                 '[ops.mult_int8]\nenergy_pj = 0.09\n')
    before = hwmodel.cost(hwmodel.FP32_MAC).energy_pj
    with pytest.raises(ValueError, match="^register_table: the table's name 'horowitz45' is a published"):
        hwmodel.register_table(f)
    assert hwmodel.cost(hwmodel.FP32_MAC).energy_pj == before
    assert hwmodel.get_table("horowitz45").source != "my synthesis"


def test_the_kulisch_width_adds_ceil_log2_k_carry_bits() -> None:
    """fx<1,7> x fx<1,7>: products span 2^0 .. 2^-14 (log2(max max) - log2(min min) + 2 = 16 bits), plus
    ceil(log2 K) carries: 16 at K = 1, 17 at K = 2, 18 at K = 3 and 4, 19 at K = 5."""
    m = emu.MAC(act="fx<1,7>", weight="fx<1,7>", acc="exact")
    assert [hwmodel.acc_width(m, k) for k in (1, 2, 3, 4, 5)] == [16, 17, 18, 18, 19]


OP = '[ops.add_int8]\nenergy_pj = 0.1\n'


@pytest.mark.parametrize(("text", "match"), [
    ('name = "t"\nnode_nm = true\n' + OP, r"node_nm=True must be a finite number"),
    ('name = "t"\nnode_nm = "abc"\n' + OP, r"node_nm='abc' must be a finite number"),
    ('name = "t"\nops = []\n', r"ops=\[\] must be a table of operations"),
    ('name = "t"\n[ops.mult_int8]\nenergy_pj = -0.09\n', r"ops\.mult_int8: Entry: energy_pj=-0\.09 must be"),
    ('name = "t"\n[ops.sram_0kb]\nenergy_pj = 1.0\n', r"'sram_0kb' is a memory of no capacity"),
])
def test_a_settings_file_error_names_the_file_and_the_field(tmp_path: Path, text: str, match: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ValueError, match=f"^{f}: .*{match}"):
        hwmodel.load_table(f)


def test_bad_cells_and_multiplier_names_are_refused_by_their_parameter() -> None:
    with pytest.raises(ValueError, match=r"^Cells: and2=-5 must be an int >= 0$"):
        gates.Cells(and2=-5)
    with pytest.raises(ValueError, match="^int_multiplier: kind='wallace' is not one of dadda, array, booth"):
        hwmodel.int_multiplier(8, 8, kind="wallace")
    with pytest.raises(ValueError, match="^network_cost: multiplier='wallace' is not one of"):
        hwmodel.network_cost([hwmodel.LayerSpec("fc", "linear", 10, 10, 10, 1, 10)], multiplier="wallace")
    with pytest.raises(ValueError, match="^cost: multiplier='wallace' is not one of"):
        hwmodel.cost("int8 x int8 -> int32", multiplier="wallace")
