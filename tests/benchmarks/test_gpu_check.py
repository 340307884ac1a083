"""`benchmarks/gpu_check.py --tiny` runs on the CPU and produces every figure of the four checks."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


def positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


@pytest.mark.slow
def test_tiny_run_on_cpu_produces_every_figure(tmp_path):
    out = tmp_path / "gpu_check.json"
    command = [sys.executable, str(SCRIPT), "--tiny", "--device", "cpu", "--threads", "1", "--out", str(out)]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    result = json.loads(out.read_text())
    assert result["tiny"] and result["device"] == "cpu" and positive(result["peak_tflops"])
    fbank, beats = result["fbank"], result["beats_mam"]
    byol, cq = result["byol_sync_bn"], result["cq_c_compile"]
    assert set(fbank["median_seconds"]) == {"torchaudio_loop", "batched"} and positive(fbank["speedup"])
    assert all(map(positive, fbank["median_seconds"].values()))
    for figure in ("clips_per_second", "flops_per_step", "mfu"):
        assert set(beats[figure]) == {"visible", "all_tokens"}
        assert all(map(positive, beats[figure].values())), figure
    # visible-only encoding does less work than all-token encoding
    assert beats["flops_per_step"]["visible"] < beats["flops_per_step"]["all_tokens"]
    # SyncBatchNorm runs on GPUs only: on the CPU the same Trainer run keeps BatchNorm
    assert positive(byol["samples_per_second"]) and not byol["sync_batchnorm"]
    assert byol["sync_batchnorm_layers"] == 0
    assert set(cq["median_seconds"]) == {"eager", "compiled"} and positive(cq["speedup"])
    assert positive(cq["first_compiled_step_seconds"]) and cq["backend"] == "eager"
