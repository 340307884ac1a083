"""Two gloo CPU processes: the quantizer's k-means init and EMA update on 2 ranks x N vectors equal one
process on the 2N vectors, and the ranks end with identical codebooks."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.testing import assert_close

from ssl_lightning.nn.distributed import rank
from ssl_lightning.nn.vector_quantizer import NormEMAVectorQuantizer

pytestmark = pytest.mark.distributed

WORLD, PER_RANK, CODES, DIM, KMEANS_SEED = 2, 12, 5, 3, 7
STATE = ("embedding.weight", "embedding.cluster_size", "embedding.initted", "cluster_size")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def global_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Vectors `[2N, DIM]` of both ranks (rank r holds rows r*N..) and their validity (some padding)."""
    z = torch.randn(WORLD * PER_RANK, DIM, generator=torch.Generator().manual_seed(3))
    valid = torch.ones(WORLD * PER_RANK, dtype=torch.bool)
    valid[PER_RANK - 2 : PER_RANK] = False  # the last two of rank 0
    valid[-3:] = False  # the last three of rank 1
    return z, valid


def initialised() -> NormEMAVectorQuantizer:
    module = NormEMAVectorQuantizer(CODES, DIM).train()
    codebook = torch.randn(CODES, DIM, generator=torch.Generator().manual_seed(4))
    module.embedding.weight.copy_(torch.nn.functional.normalize(codebook, dim=-1))
    module.embedding.initted.fill_(1.0)
    return module


def run_steps(z: torch.Tensor, valid: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
    """An EMA step from a given codebook, and k-means init + EMA step from a fresh one."""
    ema = initialised()
    ema(z, valid)
    fresh = NormEMAVectorQuantizer(CODES, DIM).train()
    torch.manual_seed(KMEANS_SEED)
    fresh(z, valid)
    return {
        name: {k: v.clone() for k, v in m.state_dict().items()}
        for name, m in (("ema", ema), ("kmeans", fresh))
    }


def worker(process: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=process, world_size=WORLD)
    try:
        z, valid = global_batch()
        rows = slice(rank() * PER_RANK, (rank() + 1) * PER_RANK)
        torch.save(run_steps(z[rows], valid[rows]), Path(out_dir) / f"rank{process}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    out_dir = tmp_path_factory.mktemp("vq_distributed")
    mp.spawn(worker, args=(free_port(), str(out_dir)), nprocs=WORLD, join=True)
    return [torch.load(out_dir / f"rank{r}.pt") for r in range(WORLD)]


@pytest.mark.parametrize("step", ["ema", "kmeans"])
def test_two_ranks_equal_one_process_on_the_global_batch(ranks: list[dict], step: str) -> None:
    single = run_steps(*global_batch())[step]
    for key in STATE:
        assert torch.equal(ranks[0][step][key], ranks[1][step][key]), key
        assert_close(ranks[0][step][key], single[key], atol=1e-6, rtol=1e-6)
    assert not torch.equal(single["embedding.weight"], initialised().embedding.weight)


def test_each_rank_alone_would_give_another_codebook(ranks: list[dict]) -> None:
    z, valid = global_batch()
    alone = run_steps(z[:PER_RANK], valid[:PER_RANK])
    for step in ("ema", "kmeans"):
        assert not torch.allclose(alone[step]["cluster_size"], ranks[0][step]["cluster_size"]), step
