"""Two gloo CPU processes: NT-Xent over the gathered batch equals one process, EMA teachers stay identical."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ssl_lightning.nn.distributed import gather_with_grad, rank, world_size
from ssl_lightning.nn.ema import EMATeacher
from ssl_lightning.nn.losses import NTXentLoss

pytestmark = pytest.mark.distributed

WORLD = 2
IN_DIM, DIM, TEMPERATURE = 6, 4, 0.2
EVEN_SIZES = [4, 4]
UNEVEN_SIZES = [3, 5]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def global_views(total: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The inputs of both views for the whole (global) batch, `[total, IN_DIM]` each."""
    g = torch.Generator().manual_seed(total)
    return torch.randn(total, IN_DIM, generator=g), torch.randn(total, IN_DIM, generator=g)


def projection() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(IN_DIM, DIM)


def ema_student() -> nn.Sequential:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(IN_DIM, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, DIM))


def ntxent_on_this_rank(sizes: list[int]) -> dict[str, torch.Tensor]:
    """Loss and gradients of this rank's share of the global batch, with a DDP-wrapped projection."""
    x0, x1 = global_views(sum(sizes))
    start = sum(sizes[: rank()])
    x0 = x0[start : start + sizes[rank()]].requires_grad_(True)
    x1 = x1[start : start + sizes[rank()]].requires_grad_(True)
    model = DistributedDataParallel(projection())
    loss = NTXentLoss(TEMPERATURE, gather_distributed=True)(model(x0), model(x1))
    loss.backward()
    return {
        "loss": loss.detach(),
        "x0_grad": x0.grad,
        "x1_grad": x1.grad,
        "weight_grad": model.module.weight.grad,
    }


def ema_on_this_rank(steps: int = 3) -> dict[str, dict[str, torch.Tensor]]:
    """Train a DDP student on rank-specific data and update an EMA teacher after every step."""
    student = DistributedDataParallel(ema_student())
    teacher = EMATeacher(student)
    initial = {k: v.clone() for k, v in teacher.module.state_dict().items()}
    optimizer = torch.optim.SGD(student.parameters(), lr=0.5)
    g = torch.Generator().manual_seed(100 + rank())
    for _ in range(steps):
        optimizer.zero_grad()
        student(torch.randn(16, IN_DIM, generator=g)).pow(2).mean().backward()
        optimizer.step()
        teacher.update(student, 0.9)
    return {
        "initial": initial,
        "teacher": teacher.module.state_dict(),
        "student": student.module.state_dict(),
    }


def worker(process: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=process, world_size=WORLD)
    try:
        assert world_size() == WORLD and rank() == process
        ranked = torch.full((process + 1, 2), float(process), requires_grad=True)
        gathered = gather_with_grad(ranked)
        (gathered * torch.arange(1.0, 4.0)[:, None]).sum().backward()
        results = {
            "gathered": gathered.detach(),
            "gather_grad": ranked.grad,
            "even": ntxent_on_this_rank(EVEN_SIZES),
            "uneven": ntxent_on_this_rank(UNEVEN_SIZES),
            "ema": ema_on_this_rank(),
        }
        torch.save(results, Path(out_dir) / f"rank{process}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    out_dir = tmp_path_factory.mktemp("distributed")
    mp.spawn(worker, args=(free_port(), str(out_dir)), nprocs=WORLD, join=True)
    return [torch.load(out_dir / f"rank{r}.pt") for r in range(WORLD)]


def single_process_ntxent(total: int) -> dict[str, torch.Tensor]:
    x0, x1 = (x.requires_grad_(True) for x in global_views(total))
    model = projection()
    loss = NTXentLoss(TEMPERATURE)(model(x0), model(x1))
    loss.backward()
    return {"loss": loss.detach(), "x0_grad": x0.grad, "x1_grad": x1.grad, "weight_grad": model.weight.grad}


def test_gather_with_grad_concatenates_uneven_batches_and_sums_gradients(ranks: list[dict]) -> None:
    expected = torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    for result in ranks:
        assert torch.equal(result["gathered"], expected)
    # Each rank's loss weights row i by i + 1; the gradient of the summed losses is 2 * (i + 1).
    assert torch.equal(ranks[0]["gather_grad"], torch.full((1, 2), 2.0))
    assert torch.equal(ranks[1]["gather_grad"], torch.tensor([[4.0, 4.0], [6.0, 6.0]]))


@pytest.mark.parametrize("case, sizes", [("even", EVEN_SIZES), ("uneven", UNEVEN_SIZES)])
def test_ntxent_on_two_ranks_equals_one_process_on_the_global_batch(
    ranks: list[dict], case: str, sizes: list[int]
) -> None:
    single = single_process_ntxent(sum(sizes))
    losses = torch.stack([r[case]["loss"] for r in ranks])
    assert losses.mean().item() == pytest.approx(single["loss"].item(), rel=1e-6)
    assert not torch.allclose(losses[0], losses[1])  # the ranks did see different anchors
    start = 0
    for result, size in zip(ranks, sizes, strict=True):
        # a rank's input gradient is that of the SUM of the ranks' losses = WORLD x the global mean's
        for key in ["x0_grad", "x1_grad"]:
            expected = WORLD * single[key][start : start + size]
            error = (result[case][key] - expected).abs().max().item()
            assert error < 1e-6, f"{key} of the rank with {size} samples is off by {error:.3g}"
        # so DDP's averaged parameter gradient equals one process on the global batch
        error = (result[case]["weight_grad"] - single["weight_grad"]).abs().max().item()
        assert error < 1e-6, f"DDP weight gradient (batches {sizes}) differs from one process by {error:.3g}"
        start += size


def test_ema_teachers_stay_identical_across_ranks(ranks: list[dict]) -> None:
    teachers = [r["ema"]["teacher"] for r in ranks]
    for name, _ in ema_student().named_parameters():
        assert torch.equal(teachers[0][name], teachers[1][name]), name
        assert not torch.equal(teachers[0][name], ranks[0]["ema"]["initial"][name]), name
        assert not torch.equal(teachers[0][name], ranks[0]["ema"]["student"][name]), name
    # BatchNorm running stats follow each rank's own student (DDP does not average them)
    for result in ranks:
        for name in ["1.running_mean", "1.running_var"]:
            assert torch.equal(result["ema"]["teacher"][name], result["ema"]["student"][name])
    assert not torch.equal(teachers[0]["1.running_mean"], teachers[1]["1.running_mean"])
