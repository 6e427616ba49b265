"""The command line's errors: one line naming the file, the key and what is allowed, exit status 2; the
traceback only with --debug; help text for every flag; one spelling of formats for train and sweeps."""

from __future__ import annotations

import gzip
import json
import re
import shlex
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nets.__main__ as cli

ROOT = Path(__file__).resolve().parents[2]


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run ``argv``; check it exits with status 2 and one line on stderr; return that line."""
    with pytest.raises(SystemExit, match=r"^nets[ :]") as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert str(info.value) == lines[0]
    assert "Traceback" not in err
    return lines[0]


def _write_idx(path: Path, array: np.ndarray, compress: bool = True) -> None:
    head = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
    data = head + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def _mnist(folder: Path, compress: bool = True) -> Path:
    folder.mkdir()
    sfx = ".gz" if compress else ""
    x = (np.arange(12 * 28 * 28) % 256).astype(np.uint8).reshape(12, 28, 28)
    y = (np.arange(12) % 10).astype(np.uint8)
    for stem, a in (("train-images-idx3-ubyte", x), ("train-labels-idx1-ubyte", y),
                    ("t10k-images-idx3-ubyte", x), ("t10k-labels-idx1-ubyte", y)):
        _write_idx(folder / (stem + sfx), a, compress)
    return folder


def test_bad_toml_names_the_file_and_the_parsers_line_and_column(tmp_path: Path, capsys) -> None:
    f = tmp_path / "run.toml"
    f.write_text("epochs = 1\nlr = \n")
    line = _refused(capsys, ["train", "--config", str(f)])
    assert re.fullmatch(rf"nets train: {re.escape(str(f))}: .* \(at line 2, column 6\)", line), line
    s = tmp_path / "s.toml"
    s.write_text('name = "t"\n[base]\nepochs = = 1\n')
    line = _refused(capsys, ["explore", str(s), "--out", str(tmp_path / "r")])
    assert re.fullmatch(rf"nets explore: sweep file {re.escape(str(s))}: .* \(at line 3, column 10\)", line)
    assert not (tmp_path / "r").exists()  # refused before anything ran


def test_unknown_keys_name_the_file_the_key_and_the_allowed_keys(tmp_path: Path, capsys) -> None:
    f = tmp_path / "run.toml"
    f.write_text("epochz = 3\n")
    line = _refused(capsys, ["train", "--config", str(f)])
    assert line.startswith(f"nets train: {f}: unknown keys epochz; allowed: model, sizes, activation,")
    s = tmp_path / "s.toml"
    s.write_text('[base]\nepochz = 1\n[grid]\nformat = ["bf16"]\n')
    line = _refused(capsys, ["explore", str(s)])
    assert line.startswith(f"nets explore: sweep file {s}: [base]: unknown keys epochz; allowed: model,")
    s.write_text('[[points]]\nformat = "bf16"\nwieght = "fx<2,6>"\n')
    line = _refused(capsys, ["explore", str(s)])
    assert line.startswith(f"nets explore: sweep file {s}: point 0: unknown keys wieght; allowed: model,")
    s.write_text('[base]\nepochs = 1\n[sweep]\nformat = ["bf16"]\n')
    line = _refused(capsys, ["explore", str(s)])
    assert line == (f"nets explore: sweep file {s}: unknown sections sweep; allowed: name, seeds, base, grid,"
                    " points, time_limit")


def test_a_damaged_results_store_is_one_line_naming_it(tmp_path: Path, capsys) -> None:
    s = tmp_path / "s.toml"
    s.write_text('[base]\nsizes = [64, 8, 10]\nepochs = 1\n[grid]\nformat = ["bf16"]\n')
    out = tmp_path / "r"
    out.mkdir()
    (out / "sweep.sqlite").write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)  # a header, then garbage
    line = _refused(capsys, ["explore", str(s), "--out", str(out)])
    assert line.startswith(f"nets explore: Store: {out / 'sweep.sqlite'} is not a results store: the file is"
                           " damaged")
    assert (out / "sweep.sqlite").read_bytes() == b"SQLite format 3\x00" + b"\xff" * 200  # untouched


def test_a_wrong_type_in_a_file_is_one_line_too(tmp_path: Path, capsys) -> None:
    s = tmp_path / "s.toml"
    s.write_text('[base]\nepochs = "2"\n[grid]\nformat = ["bf16"]\n')
    line = _refused(capsys, ["explore", str(s)])
    assert line == f"nets explore: sweep file {s}: point 0: epochs='2' must be an int"
    f = tmp_path / "run.toml"
    f.write_text('epochs = "2"\n')
    line = _refused(capsys, ["train", "--config", str(f)])
    assert line == f"nets train: {f}: epochs='2' must be an integer"


def test_a_preset_that_is_not_a_string_or_no_epoch_is_one_line_naming_the_key(tmp_path: Path, capsys) -> None:
    s = tmp_path / "s.toml"
    for key in ("mac", "policy"):
        s.write_text(f"seeds = [0]\npoints = [{{{key} = 5}}]\n")
        line = _refused(capsys, ["explore", str(s), "--out", str(tmp_path / "r")])
        assert line.startswith(f"nets explore: sweep file {s}: point 0: {key}=5: ")
        example = "'e4m3 x e4m3 -> fp32'" if key == "mac" else "'gupta fx<4,12> stochastic'"
        assert line.endswith(f"must be a preset's name (a string), e.g. {example}")
    s.write_text("seeds = [0]\n[base]\nepochs = 0\n")
    line = _refused(capsys, ["explore", str(s), "--out", str(tmp_path / "r")])
    assert line == f"nets explore: sweep file {s}: point 0: epochs=0 outside the allowed range [1, inf)"
    f = tmp_path / "search.toml"
    for table, key, value in (("baseline", "mac", "5"), ("baseline", "policy", "5"), ("setup", "epochs", "0"),
                              ("setup", "epochs", '"2"')):
        f.write_text(f"[search]\nseeds = [0]\n[search.{table}]\n{key} = {value}\n")
        line = _refused(capsys, ["search", str(f), "--out", str(tmp_path / "r")])
        assert line.startswith(f"nets search: {f}: [search] SearchSpec: setup/baseline: sweep point 0:"
                               f" {key}={value.replace(chr(34), chr(39))}")
    assert not (tmp_path / "r").exists()  # refused before anything ran


def test_a_search_file_with_keys_outside_its_search_table_is_refused(tmp_path: Path, capsys) -> None:
    f = tmp_path / "search.toml"
    f.write_text("[search]\nseeds = [0]\nweight_bits = [8]\nact_bits = [8]\n[setup]\nsizes = [64, 8, 10]\n"
                 "epochs = 1\n")
    line = _refused(capsys, ["search", str(f), "--out", str(tmp_path / "r")])
    assert line == (f"nets search: SearchSpec.from_toml: {f}: [setup] should be [search.setup]; the spec"
                    " lives under [search] (its fields, [search.setup] and [search.baseline]), nothing else"
                    " is read")
    f.write_text("time_limit = 5\n[search]\nseeds = [0]\n")
    line = _refused(capsys, ["search", str(f), "--out", str(tmp_path / "r")])
    assert line.startswith(f"nets search: SearchSpec.from_toml: {f}: key time_limit is outside [search];")
    f.write_text('[search]\ncriterion = "interval"\nseeds = [0]\n')
    line = _refused(capsys, ["search", str(f), "--out", str(tmp_path / "r")])
    assert line == (f"nets search: {f}: [search] SearchSpec: criterion='interval' needs two seeds or more;"
                    " seeds=[0] has one (give more seeds, or criterion='mean')")
    assert not (tmp_path / "r").exists()


def test_an_unknown_format_names_its_key_and_the_spelling_rules(tmp_path: Path, capsys) -> None:
    s = tmp_path / "s.toml"
    s.write_text('seeds = [0]\n[base]\nepochs = 1\n[grid]\nformat = ["bf16", "fx<4,>"]\n')
    line = _refused(capsys, ["explore", str(s)])
    assert line.startswith(f"nets explore: sweep file {s}: point 1: format='fx<4,>': get_format:"
                           " name='fx<4,>' is not a known format")
    assert "Grammar: fx<IL,FL>, ufx<IL,FL>, intN" in line
    s.write_text('seeds = [0]\n[[points]]\nformat = "fx<2,6>"\nacc = "fx<4,x>"\n')
    line = _refused(capsys, ["explore", str(s)])
    assert line.startswith(f"nets explore: sweep file {s}: point 0: acc='fx<4,x>': ")
    line = _refused(capsys, ["train", "--format", "fx<4,>"])
    assert line.startswith("nets train: --format='fx<4,>': get_format: name='fx<4,>' is not a known format")
    assert "Grammar: fx<IL,FL>" in line
    f = tmp_path / "run.toml"
    f.write_text('format = "fx<2,6>"\nmaster = "e9m9"\n')
    line = _refused(capsys, ["train", "--config", str(f)])
    assert line.startswith(f"nets train: {f}: master='e9m9': get_format: name='e9m9' is not a known format")
    line = _refused(capsys, ["train", "--policy", "gupta"])
    assert line.startswith("nets train: --policy='gupta': PrecisionPolicy.preset: name='gupta' is not a"
                           " preset; presets: ")


def test_data_file_problems_name_the_file(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nowhere"
    line = _refused(capsys, ["train", "--data", f"mnist:{missing}", "--epochs", "1"])
    assert line == (f"nets train: mnist: folder {missing} (for train-images-idx3-ubyte[.gz]) does not exist;"
                    " give the folder that holds the four MNIST IDX files (nothing is downloaded)")
    folder = _mnist(tmp_path / "gz")
    bad = folder / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:40])  # a truncated gzip stream
    line = _refused(capsys, ["train", "--data", f"mnist:{folder}", "--sizes", "784,10", "--epochs", "1"])
    assert line.startswith(f"nets train: mnist: {bad} is not a readable gzip file (")
    plain = _mnist(tmp_path / "plain", compress=False)
    images = plain / "train-images-idx3-ubyte"
    images.write_bytes((plain / "train-labels-idx1-ubyte").read_bytes())
    line = _refused(capsys, ["train", "--data", f"mnist:{plain}", "--sizes", "784,10", "--epochs", "1"])
    assert line == (f"nets train: mnist: {images} starts with magic number 0x00000801; an MNIST images file"
                    " starts with 0x00000803")



def test_a_malformed_npz_file_is_one_line_naming_the_file(tmp_path: Path, capsys) -> None:
    good = tmp_path / "good.npz"
    np.savez(good, x=np.zeros((8, 64)), y=np.arange(8) % 2)
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[:300])  # a truncated archive: zipfile.BadZipFile inside numpy
    line = _refused(capsys, ["train", "--data", f"npz:{cut}", "--epochs", "1"])
    assert line == (f"nets train: datasets.npz: cannot read {cut}: not a readable .npz (zip) archive (File is"
                    " not a zip file); is it truncated or corrupt?")
    objects = tmp_path / "objects.npz"
    np.savez(objects, x=np.array([[1, 2]] * 4, dtype=object), y=np.arange(4) % 2)
    line = _refused(capsys, ["train", "--data", f"npz:{objects}", "--epochs", "1"])
    assert line == (f"nets train: datasets.npz: cannot read {objects}: array 'x': Object arrays cannot be"
                    " loaded when allow_pickle=False")

def test_debug_shows_the_traceback(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nowhere"
    for argv in (["--debug", "train", "--data", f"mnist:{missing}"],
                 ["train", "--data", f"mnist:{missing}", "--debug"]):
        with pytest.raises(FileNotFoundError, match=r"^mnist: folder \S+nowhere \(for \S+\) does not exist"):
            cli.main(argv)
    s = tmp_path / "s.toml"
    s.write_text("[base\n")
    with pytest.raises(ValueError, match=r"^sweep file \S+s\.toml: ") as info:
        cli.main(["explore", str(s), "--debug"])
    assert type(info.value.__cause__).__name__ == "TOMLDecodeError"
    # a refused flag value still exits 2, after printing the traceback and the line
    with pytest.raises(SystemExit, match=r"^nets train: --epochs=-3 ") as refused:
        cli.main(["train", "--epochs", "-3", "--debug"])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.splitlines()[-1] == "nets train: --epochs=-3 outside the allowed range [1, inf)"


def test_a_bug_is_not_hidden(monkeypatch, capsys) -> None:
    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(cli, "train", broken)
    with pytest.raises(KeyError, match="a bug"):
        cli.main(["train", "--epochs", "1", "--sizes", "64,8,10"])


def test_bad_flag_values_are_one_line(capsys) -> None:
    assert _refused(capsys, ["train", "--sizes", "64;8;10"]) == (
        "nets train: argument --sizes: '64;8;10' is not a list of integers; write 64,100,10 or [64,100,10];"
        " see python -m nets train --help")
    assert _refused(capsys, ["train", "--epochs", "-3"]) == (
        "nets train: --epochs=-3 outside the allowed range [1, inf)")
    assert _refused(capsys, ["train", "--epochs", "three"]).startswith(
        "nets train: argument --epochs: invalid int value: 'three'")
    assert _refused(capsys, ["train", "--sizes", "[64]"]) == (
        "nets train: --sizes=[64] must list at least two layer widths >= 1, as [64, 100, 10]")
    assert _refused(capsys, ["train", "--model", "vgg"]) == (
        "nets train: --model='vgg' is not one of mlp, lenet5, resnet")
    for lr in ("0", "inf"):
        assert _refused(capsys, ["train", "--lr", lr]) == (
            f"nets train: --lr={float(lr)} must be a finite number above 0")
    # a setting the chosen model or optimizer would not use is refused, not ignored
    assert _refused(capsys, ["train", "--model", "resnet", "--activation", "tanh"]) == (
        "nets train: --activation='tanh' applies to model mlp and lenet5 (resnet uses relu); it is not used"
        " with --model='resnet'")
    assert _refused(capsys, ["train", "--model", "lenet5", "--sizes", "64,10"]).startswith(
        "nets train: --sizes=[64, 10] applies to model mlp")
    assert _refused(capsys, ["train", "--optimizer", "adam", "--momentum", "0.9"]) == (
        "nets train: --momentum=0.9 applies to optimizer sgd (adam keeps its own moments); it is not used"
        " with --optimizer='adam'")
    assert _refused(capsys, ["train", "--policy", "uniform:fx<4,8>:stochastic:extra"]) == (
        "nets train: --policy='uniform:fx<4,8>:stochastic:extra' must be uniform:FORMAT or"
        " uniform:FORMAT:ROUNDING")
    # the uniform spelling's own format or rounding is named as the policy the user wrote
    assert _refused(capsys, ["train", "--policy", "uniform:fx<4,8>:bogus"]).startswith(
        "nets train: --policy='uniform:fx<4,8>:bogus': rounding='bogus' is not one of nearest_even, ")
    assert _refused(capsys, ["train", "--policy", "uniform:fx<4,x>"]).startswith(
        "nets train: --policy='uniform:fx<4,x>': format='fx<4,x>': get_format: ")
    # a rounding the format does not take is refused, naming the flags
    assert _refused(capsys, ["train", "--format", "binary", "--rounding", "stochastic"]).startswith(
        "nets train: --format='binary', --rounding='stochastic': RoleFormat: rounding=stochastic does not"
        " apply to binary")
    # a rounding, granularity or straight-through rule on float64 roles would change nothing: refused
    ignored = "set without a format that rounds (--format other than float64, or a --policy preset)"
    for argv, named in ((["--format", "float64", "--rounding", "stochastic"], "--rounding='stochastic'"),
                        (["--granularity", "layer"], "--granularity='layer'"),
                        (["--policy", "float64", "--ste", "identity"], "--ste='identity'"),
                        (["--format", "float64", "--mac", "mxfp8", "--ste", "clipped"], "--ste='clipped'"),
                        (["--policy", "uniform:float64:stochastic", "--granularity", "batch"],
                         "--policy='uniform:float64:stochastic', --granularity='batch'")):
        assert _refused(capsys, ["train", *argv]).startswith(f"nets train: {named} {ignored}")
    assert _refused(capsys, ["train", "--data", "digits:/somewhere", "--epochs", "1"]) == (
        "nets train: --data='digits:/somewhere': digits is embedded and takes no path; give digits")
    assert _refused(capsys, ["train", "--out", "no_such_folder_here/run.json"]).startswith(
        "nets train: --out='no_such_folder_here/run.json' names a file in a folder that does not exist")
    assert _refused(capsys, ["experiments", "--folds", "2000"]) == (
        "nets experiments: --folds=2000 outside the allowed range [2, 1797] (the digits images)")
    assert _refused(capsys, ["experiments", "--scale", "inf"]) == (
        "nets experiments: --scale=inf must be a finite number above 0")
    assert _refused(capsys, ["train", "--rounding", "stochastic"]) == (
        "nets train: --rounding='stochastic' needs --format (the format of a uniform policy)")
    assert _refused(capsys, ["train", "--format", "bf16", "--rounding", "up"]).startswith(
        "nets train: --rounding='up' is not one of nearest_even, ")
    assert _refused(capsys, ["train", "--format", "bf16", "--policy", "twn"]).startswith(
        "nets train: --format='bf16' is given beside --policy='twn'")
    assert _refused(capsys, ["train", "--format", "fx<2,6>", "--acc-overflow", "wrap"]) == (
        "nets train: --acc-overflow='wrap' needs --acc (an accumulator format)")
    for bad in ("inf", "bogus"):  # the message lists what this flag accepts, not every overflow mode
        args = ["train", "--format", "fx<2,6>", "--acc", "fx<6,12>", "--acc-overflow", bad]
        assert _refused(capsys, args) == f"nets train: --acc-overflow={bad!r} is not one of wrap, saturate"
    assert _refused(capsys, ["explore", "--seeds", "0,a"]) == (
        "nets explore: argument --seeds: '0,a' is not a list of integers; write 0,1,2 or [0,1,2];"
        " see python -m nets explore --help")
    assert _refused(capsys, ["explore", "--seeds", "1,1"]).startswith(
        "nets explore: argument --seeds: '1,1' must name distinct seeds >= 0")
    assert _refused(capsys, ["explore", "--epochs", "-3"]) == "nets explore: --epochs=-3 must be at least 1"
    assert _refused(capsys, ["experiments", "--seeds", "0"]) == (
        "nets experiments: --seeds=0 must be at least 1")
    assert _refused(capsys, ["train", "--nope"]).startswith("nets train: unrecognized arguments: --nope")
    assert _refused(capsys, ["fly"]).startswith(
        "nets: argument {train,explore,search,experiments}: invalid choice")


def test_the_interpreter_exits_with_status_2_and_one_line() -> None:
    run = subprocess.run([sys.executable, "-m", "nets", "train", "--sizes", "[64,x]"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        "nets train: argument --sizes: '[64,x]' is not a list of integers; write 64,100,10 or [64,100,10];"
        " see python -m nets train --help"]


@pytest.mark.parametrize("cmd", ["train", "explore", "search", "experiments"])
def test_every_flag_has_help_and_the_help_has_examples(cmd: str, capsys) -> None:
    with pytest.raises(SystemExit, match="^0$") as info:
        cli.main([cmd, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    options = text.split("options:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    flags = []
    for i, line in enumerate(options):
        m = re.match(r"  (-[-\w]+(?:, --[-\w]+)?)(?: \S+)?( {2,}\S.*)?$", line)
        if m is None:
            continue
        flags.append(m[1])
        follow = options[i + 1] if i + 1 < len(options) else ""
        assert m[2] or re.match(r" {8,}\S", follow), f"{m[1]} has no help text"
    assert "--debug" in flags
    if cmd == "train":
        for key in cli.DEFAULTS:
            assert "--" + key.replace("_", "-") in flags
    assert "\nexamples:\n  python -m nets " + cmd in text


def test_sizes_take_both_spellings_and_format_spells_a_policy_as_a_sweep_does(tmp_path: Path, capsys) -> None:
    runs = {}
    for name, extra in (("format", ["--sizes", "[64, 8, 10]", "--format", "fx<4,8>", "--rounding",
                                    "stochastic"]),
                        ("uniform", ["--sizes", "64,8,10", "--policy", "uniform:fx<4,8>:stochastic"])):
        out = tmp_path / f"{name}.json"
        cli.main(["train", "--epochs", "1", "--lr", "0.05", "--out", str(out), *extra])
        runs[name] = json.loads(out.read_text())
    assert runs["format"]["config"]["sizes"] == [64, 8, 10]
    assert runs["format"]["test_accuracy"] == runs["uniform"]["test_accuracy"]
    assert runs["format"]["test_loss"] == runs["uniform"]["test_loss"]
    assert runs["format"]["policy"] == runs["uniform"]["policy"]
    assert "fx<4,8>" in runs["format"]["policy"]
    # the same keys in a TOML file, as a sweep file spells them, with an accumulator
    f = tmp_path / "run.toml"
    f.write_text(f'format = "fx<2,6>"\nacc = "fx<6,12>"\nacc_overflow = "wrap"\nsizes = [64, 8, 10]\n'
                 f'epochs = 1\nout = "{tmp_path / "acc.json"}"\n')
    cli.main(["train", "--config", str(f)])
    rec = json.loads((tmp_path / "acc.json").read_text())
    assert "fx<6,12>" in rec["policy"]
    assert "wrap" in rec["policy"]
    assert "test accuracy" in capsys.readouterr().out


def test_the_train_examples_of_the_help_run(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run.toml").write_text('format = "bf16"\nsizes = [64, 8, 10]\n')
    with pytest.raises(SystemExit, match="^0$"):
        cli.main(["train", "--help"])
    epilog = capsys.readouterr().out.split("\nexamples:\n", 1)[1]
    commands = [shlex.split(line.split("#")[0]) for line in epilog.splitlines()
                if line.startswith("  python -m nets train ")]
    assert len(commands) == 5
    for argv in commands:
        cli.main([*argv[3:], "--epochs", "1"])
        assert "test accuracy" in capsys.readouterr().out
    assert (tmp_path / "run.json").exists()


def test_ctrl_c_is_one_line_and_status_130(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def interrupted(args: object) -> None:
        raise KeyboardInterrupt
    monkeypatch.setitem(cli._COMMANDS, "explore", interrupted)
    with pytest.raises(SystemExit, match="^130$"):
        cli.main(["explore", "examples/formats.toml"])
    assert capsys.readouterr().err == "nets explore: interrupted\n"


def test_empty_paths_and_unwritable_outputs_are_refused_before_any_work(tmp_path: Path, monkeypatch,
                                                                        capsys) -> None:
    ran = []
    monkeypatch.setattr(cli, "train", lambda *a, **k: ran.append(1))  # nothing may train
    assert _refused(capsys, ["train", "--out", ""]) == ("nets train: --out='' is empty; see python -m nets"
                                                        " train --help")
    assert "--config='' is empty" in _refused(capsys, ["train", "--config", " "])
    assert "sweep='' is empty" in _refused(capsys, ["explore", "", "--out", str(tmp_path / "o")])
    assert "--out='' is empty" in _refused(capsys, ["explore", "--out", ""])
    assert "--dask='' is empty" in _refused(capsys, ["explore", "--dask", ""])
    assert "--out=" in _refused(capsys, ["train", "--out", str(tmp_path)])
    assert "is a folder" in _refused(capsys, ["train", "--out", str(tmp_path)])
    f = tmp_path / "run.toml"
    f.write_text('out = ""\n')
    assert _refused(capsys, ["train", "--config", str(f)]).endswith("out='' is empty: name the JSON file"
                                                                     " to write")
    f.write_bytes(b"\xff\xfe = 1\n")
    assert str(f) in _refused(capsys, ["train", "--config", str(f)])
    assert ran == []


def test_train_prints_its_seed_and_the_accuracys_interval(capsys) -> None:
    cli.main(["train", "--epochs", "1", "--sizes", "64,8,10", "--seed", "3"])
    out = capsys.readouterr().out
    assert re.search(r"\d+\.\d\d % \[\d+\.\d\d, \d+\.\d\d\] \(n=\d+\)", out)
    assert "seed 3; the interval is over the" in out


def test_a_data_name_train_cannot_read_is_refused_naming_the_flag_or_the_files_key(tmp_path: Path,
                                                                                   capsys) -> None:
    line = _refused(capsys, ["train", "--data", "bad.npz"])
    assert line == ("nets train: --data='bad.npz' is not digits, mnist:<folder>, cifar10:<folder> or"
                    " npz:<file>")
    f = tmp_path / "run.toml"
    f.write_text('data = "mnist"\n')
    line = _refused(capsys, ["train", "--config", str(f)])
    assert line == f"nets train: {f}: data='mnist' names no folder; give mnist:<folder>"
