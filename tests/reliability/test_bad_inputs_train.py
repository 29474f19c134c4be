"""Bad train params, table-driven: sizes the data or the machine cannot serve are refused by `seqpipe
train` in one line naming the key, before anything is allocated or written (see tests/reliability/
bad_inputs.py for what `check_refused` asserts). Every model's network is checked the same way."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from seqpipe.numerics import usable_cores
from tests.reliability.bad_inputs import Case, check_refused, good

BIG = 4096  # more threads and processes than any machine this runs on has cores
NEAR_BUDGET = 8900  # bandwidth's LSTM with num_layers 2: about 0.95e9 parameters, under the parameter budget


def _processed(model: str, expected: str) -> Callable[[Path, Path], str]:
    """Good processed data of `model` in the case's folder; the error line must contain `expected`."""
    def setup(base: Path, work: Path) -> str:
        shutil.copytree(good(base, "preprocess", model), work / "data/processed" / model)
        return expected
    return setup


def _over_memory(base: Path, work: Path) -> str:
    """Two CPU processes of a network under the parameter budget need about 2 x 15 GB."""
    available = int(dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
                    ["MemAvailable"].split()[0]) * 1024
    if available > 29e9 or usable_cores() < 2:
        pytest.skip("this machine has the memory (or too few cores) for two copies of a 0.95e9-parameter network")
    return _processed("bandwidth", "models.bandwidth.model: training LinearResidualLSTM needs about")(base, work)


CASES = [
    # 17: a 64 TB network, counted on the meta device, never allocated
    Case("hidden_size_2000000", ["train", "bandwidth"],
         _processed("bandwidth", "models.bandwidth.model.hidden_size: must be in 1..16384, got 2000000"),
         "models/bandwidth/model.pt", {"models.bandwidth.model.hidden_size": 2_000_000,
                                       "models.bandwidth.model.num_layers": 2}),
    Case("hidden_size_2000000_two_processes", ["train", "bandwidth"],
         _processed("bandwidth", "models.bandwidth.model.hidden_size: must be in 1..16384, got 2000000"),
         "models/bandwidth/model.pt", {"models.bandwidth.model.hidden_size": 2_000_000,
                                       "models.bandwidth.model.num_layers": 2,
                                       "models.bandwidth.train.nproc_per_node": 2}),
    Case("resnet_base_width_huge", ["train", "ice_type", "--validate-only"],
         _processed("ice_type", "models.ice_type.model.base_width: must be in 4..512, got 100000"),
         "models/ice_type/model.pt", {"models.ice_type.model.base_width": 100_000}),
    Case("convlstm_hidden_channels_huge", ["train", "ice_forecast", "--validate-only"],
         _processed("ice_forecast", "models.ice_forecast.model.hidden_channels: must be in 1..1024, got 100000"),
         "models/ice_forecast/model.pt", {"models.ice_forecast.model.hidden_channels": 100_000}),
    Case("under_parameter_budget_over_memory", ["train", "bandwidth"], _over_memory, "models/bandwidth/model.pt",
         {"models.bandwidth.model.hidden_size": NEAR_BUDGET, "models.bandwidth.model.num_layers": 2,
          "models.bandwidth.train.nproc_per_node": 2}),
    Case("batch_size_above_train_split", ["train", "bandwidth"],
         _processed("bandwidth", "models.bandwidth.train.batch_size is 100000 but the train split has"),
         "models/bandwidth/model.pt", {"models.bandwidth.train.batch_size": 100_000}),
    Case("batch_size_above_share_of_two_processes", ["train", "bandwidth"],
         _processed("bandwidth", "per process); set it to at most"),
         "models/bandwidth/model.pt", {"models.bandwidth.train.batch_size": 200,
                                       "models.bandwidth.train.nproc_per_node": 2}, slow=True),
    Case("num_threads_absurd", ["train", "bandwidth"],
         _processed("bandwidth", "params.yaml: models.bandwidth.train.num_threads: must be in 0..256"),
         "models/bandwidth/model.pt", {"models.bandwidth.train.num_threads": 100_000}),
    Case("nproc_per_node_above_cores", ["train", "bandwidth"],
         _processed("bandwidth", f"models.bandwidth.train.nproc_per_node: must be in 1..1024 (1 = no DDP), got {BIG}"),
         "models/bandwidth/model.pt", {"models.bandwidth.train.nproc_per_node": BIG}),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else [])
                                  for c in CASES])
def test_bad_train_param_is_refused(case: Case, base: Path, tmp_path: Path) -> None:
    check_refused(case, base, tmp_path)
