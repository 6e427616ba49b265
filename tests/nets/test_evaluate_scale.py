"""Evaluation at scale (`nets.evaluate` with ``workers``/``dask``, `Model.predict`): batches are seeded from
(eval_seed, batch index), so a sharded evaluation is bit-identical to a local one for any number of
workers, under a policy whose stochastic conversions are kept in evaluation; and each example's loss comes
from its own row, summed exactly, so the loss is bit-identical for any batch size too."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest

import nets
from nets.datasets import Split
from nets.layers import Context
from nets.models import evaluation_context
from nets.policy import PrecisionPolicy
from tests.scripts import run_script

DATA = nets.datasets.digits(seed=0)
#: stochastic conversions kept in evaluation (eval_rounding="policy"), seeded by eval_seed=5
STOCHASTIC = replace(PrecisionPolicy.uniform("fx<3,4>", "stochastic"), eval_rounding="policy", eval_seed=5)
SPLIT = Split(DATA.test.x[:230], DATA.test.y[:230])  # 8 batches of 30 (the last one of 20)


def _model() -> nets.Model:
    model = nets.mlp([64, 32, 10], seed=3)
    nets.train(model, DATA, None, epochs=1, batch_size=64, seed=0, progress=False)
    return model


MODEL = _model()


def test_local_evaluation_seeds_every_batch_from_the_eval_seed_and_its_index() -> None:
    local = nets.evaluate(MODEL, SPLIT, STOCHASTIC, batch_size=30)
    assert local == nets.evaluate(MODEL, SPLIT, STOCHASTIC, batch_size=30)
    assert local != nets.evaluate(MODEL, SPLIT, STOCHASTIC, batch_size=30, seed=6)
    # batch 2 alone, seeded as the third batch, gives the third batch's loss exactly
    rows = slice(60, 90)
    z = MODEL.forward(SPLIT.x[rows], evaluation_context(STOCHASTIC, 2))
    alone = MODEL.loss(z, SPLIT.y[rows])[0]
    z_first = MODEL.forward(SPLIT.x[rows], evaluation_context(STOCHASTIC, 0))
    assert alone != MODEL.loss(z_first, SPLIT.y[rows])[0]  # the stream depends on the batch index
    full = MODEL.predict(SPLIT.x, STOCHASTIC, batch_size=30)
    np.testing.assert_array_equal(full[rows], z)


@pytest.mark.parametrize("workers", [2, 3])
def test_sharded_over_processes_is_bit_identical_to_local(workers: int) -> None:
    local = nets.evaluate(MODEL, SPLIT, STOCHASTIC, batch_size=30)
    sharded = nets.evaluate(MODEL, SPLIT, STOCHASTIC, batch_size=30, workers=workers)
    assert sharded == local  # exact float equality: loss and accuracy


def test_sharded_on_a_local_dask_cluster_is_bit_identical_to_local() -> None:
    local = nets.evaluate(MODEL, SPLIT, STOCHASTIC, batch_size=30)
    assert nets.evaluate(MODEL, SPLIT, STOCHASTIC, batch_size=30, workers=2, dask=True) == local


@pytest.mark.parametrize("name", ["float64", "gupta fx<4,12> nearest", "e4m3 forward / e5m2 backward"])
def test_the_loss_and_accuracy_are_bit_identical_for_any_batch_size(name: str) -> None:
    """Each example's loss from its own output row (float64 products by row_product, not BLAS, which rounds
    a row with the rows of its call), their mean an exact sum over n: before, each batch's mean times its
    rows was added up, and the loss moved in its last bits with batch_size."""
    policy = PrecisionPolicy.preset(name)
    one = nets.evaluate(MODEL, DATA, policy, batch_size=1)
    for batch_size in (7, 64, 10000):
        assert nets.evaluate(MODEL, DATA, policy, batch_size=batch_size) == one, batch_size


def test_sharded_in_other_batches_is_bit_identical_to_local() -> None:
    local = nets.evaluate(MODEL, DATA, None, batch_size=64)
    assert nets.evaluate(MODEL, DATA, None, batch_size=7, workers=2) == local


def test_a_dataset_evaluates_its_test_split_and_the_bar_draws_only_on_a_terminal() -> None:
    assert nets.evaluate(MODEL, DATA, STOCHASTIC) == nets.evaluate(MODEL, DATA.test, STOCHASTIC)
    quiet = io.StringIO()
    nets.evaluate(MODEL, SPLIT, None, batch_size=30, progress=True, stream=quiet)
    assert quiet.getvalue() == ""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Terminal()
    nets.evaluate(MODEL, SPLIT, None, batch_size=30, progress=True, stream=tty)
    assert "8/8 batches" in tty.getvalue()


def test_predict_returns_the_outputs_under_a_policy_or_a_context() -> None:
    x = SPLIT.x[:50]
    np.testing.assert_array_equal(MODEL.predict(x), MODEL.forward(x, evaluation_context(None)))
    # its float64 products are row_product's, not BLAS's: the same values up to the order of the sums
    blas = MODEL.forward(x, Context.float64(training=False))
    np.testing.assert_allclose(MODEL.predict(x), blas, rtol=1e-12, atol=1e-12)
    pol = PrecisionPolicy.uniform("fx<4,6>")
    z = MODEL.predict(x, pol, batch_size=7)
    assert z.shape == (50, 10)
    assert np.array_equal(z * 64, np.round(z * 64))  # values of the output format fx<4,6>
    np.testing.assert_array_equal(z, MODEL.predict(x, pol, batch_size=50))  # nearest: batches do not matter
    ctx = Context(pol, nets.Quantizer(0), training=False)
    np.testing.assert_array_equal(MODEL.predict(x, ctx), z)
    with pytest.raises(ValueError, match="Model.predict: quant= and seed= are for a policy"):
        MODEL.predict(x, ctx, seed=1)
    with pytest.raises(ValueError, match=r"Model.predict: batch_size=0 outside the allowed range"):
        MODEL.predict(x, pol, batch_size=0)


def test_bad_workers_and_batch_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match=r"^evaluate: workers=0 outside the allowed range \[1, 1024\]$"):
        nets.evaluate(MODEL, SPLIT, workers=0)
    # an OverflowError of the process pool before: a bound of its own
    with pytest.raises(ValueError, match=r"^evaluate: workers=1180591620717411303424 outside the allowed"
                                         r" range \[1, 1024\]$"):
        nets.evaluate(MODEL, SPLIT, workers=2**70)
    with pytest.raises(ValueError, match=r"evaluate: batch_size=0 outside the allowed range"):
        nets.evaluate(MODEL, SPLIT, batch_size=0)
    with pytest.raises(ValueError, match=r"evaluation_context: batch=-1 outside the allowed range"):
        evaluation_context(None, -1)


def test_a_training_runs_converter_lends_its_radix_points_to_every_worker() -> None:
    pol = nets.POLICY_PRESETS["courbariaux dfx 10/12"](period=3, warmup_batches=2)
    model = nets.mlp([64, 16, 10], seed=0)
    quant = nets.Quantizer(0)
    ctx = Context(pol, quant, True)
    for i in range(0, 320, 32):  # ten steps: warm-ups end and radix points move
        model.loss_and_grad(DATA.train.x[i:i + 32], DATA.train.y[i:i + 32], ctx)
        quant.end_step()
    moved = nets.evaluate(model, SPLIT, pol, quant, batch_size=30)
    assert moved != nets.evaluate(model, SPLIT, pol, batch_size=30)  # the lent radix points matter
    assert nets.evaluate(model, SPLIT, pol, quant, batch_size=30, workers=2) == moved


def test_a_script_without_the_main_guard_is_told_so_instead_of_a_broken_pool(tmp_path) -> None:
    """Workers import the script that started them: an unguarded sharded evaluate started one again in each
    (Python refused to spawn during bootstrapping and the caller saw only BrokenProcessPool). Each worker
    now refuses by name, and the caller's error names the guard."""
    done = run_script(tmp_path, "import nets\n"
                      "data = nets.datasets.digits(seed=0)\n"
                      "print(nets.evaluate(nets.mlp([64, 8, 10], seed=0), data, None, batch_size=90,"
                      " workers=2))\n")
    assert done.returncode == 1
    assert ("RuntimeError: evaluate: called while a worker process imports the script that started the"
            " evaluation") in done.stderr
    assert done.stderr.rstrip().splitlines()[-1].startswith(
        "RuntimeError: evaluate: a worker process died before returning its batches")
