import pytest
import torch
from torch import nn

from ssl_lightning.nn.ema import EMATeacher, cosine_tau, linear_tau


def make_student(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Dropout(0.5), nn.Linear(6, 3))


def perturbed(student: nn.Module, seed: int) -> None:
    """Move every parameter and running statistic of `student` to new random values, in place."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in [*student.parameters(), student[1].running_mean, student[1].running_var]:
            tensor.add_(torch.rand(tensor.shape, generator=g))


def test_cosine_tau_oracles_and_monotone() -> None:
    assert cosine_tau(0, 1000) == pytest.approx(0.996)
    assert cosine_tau(500, 1000) == pytest.approx(0.998)
    assert cosine_tau(1000, 1000) == pytest.approx(1.0)
    assert cosine_tau(5000, 1000) == pytest.approx(1.0)
    assert cosine_tau(0, 10, base_tau=0.99, final_tau=0.999) == pytest.approx(0.99)
    values = [cosine_tau(k, 100) for k in range(101)]
    assert all(b >= a for a, b in zip(values, values[1:], strict=False))
    with pytest.raises(ValueError, match="max_steps"):
        cosine_tau(0, 0)


def test_linear_tau_data2vec_oracle() -> None:
    assert linear_tau(0, 30_000, 0.999, 0.9999) == pytest.approx(0.999)
    assert linear_tau(15_000, 30_000, 0.999, 0.9999) == pytest.approx(0.99945)
    assert linear_tau(30_000, 30_000, 0.999, 0.9999) == pytest.approx(0.9999)
    assert linear_tau(90_000, 30_000, 0.999, 0.9999) == pytest.approx(0.9999)
    assert linear_tau(0, 0, 0.999, 0.9999) == pytest.approx(0.9999)
    with pytest.raises(ValueError, match="step"):
        linear_tau(-1, 10, 0.9, 0.99)


def test_teacher_is_a_frozen_float32_copy_independent_of_the_student() -> None:
    student = make_student().to(torch.bfloat16)
    teacher = EMATeacher(student)
    for (name, t), s in zip(teacher.module.named_parameters(), student.parameters(), strict=True):
        assert t.dtype == torch.float32, name
        assert not t.requires_grad
        assert torch.equal(t, s.float())
    with torch.no_grad():
        student[0].weight.add_(1.0)
    assert not torch.equal(teacher.module[0].weight, student[0].weight.float())


@pytest.mark.parametrize("tau", [1.0, 0.0, 0.99])
def test_update_is_tau_old_plus_one_minus_tau_new(tau: float) -> None:
    student = make_student()
    teacher = EMATeacher(student, ema_buffers=True)
    old = {k: v.clone() for k, v in teacher.module.state_dict().items()}
    perturbed(student, seed=1)
    teacher.update(student, tau)
    new = student.state_dict()
    for key, value in teacher.module.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        expected = tau * old[key] + (1 - tau) * new[key]
        assert torch.allclose(value, expected, atol=1e-6), key
    if tau == 1.0:
        assert torch.equal(teacher.module[0].weight, old["0.weight"])
    if tau == 0.0:
        assert torch.equal(teacher.module[0].weight, student[0].weight)


def test_buffers_are_copied_by_default_and_skip_keys_and_frozen_params_are_copied() -> None:
    student = make_student()
    student[3].bias.requires_grad_(False)
    teacher = EMATeacher(student, skip_keys=["0"])
    old_weight = teacher.module[3].weight.clone()
    perturbed(student, seed=2)
    student[1].num_batches_tracked.fill_(7)
    teacher.update(student, 0.5)
    copied = ["0.weight", "0.bias", "3.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked"]
    state, source = teacher.module.state_dict(), student.state_dict()
    for key in copied:
        assert torch.equal(state[key], source[key].to(state[key].dtype)), key
    assert torch.allclose(state["3.weight"], 0.5 * old_weight + 0.5 * source["3.weight"])


def test_bf16_student_updates_the_float32_teacher_without_rounding_it() -> None:
    student = make_student().to(torch.bfloat16)
    teacher = EMATeacher(student)
    before = teacher.module[0].weight.clone()
    teacher.update(student, 0.9999)  # same values: no change beyond float32 rounding
    assert torch.allclose(teacher.module[0].weight, before, rtol=1e-6, atol=0)
    with torch.no_grad():
        student[0].weight.add_(1.0)
    teacher.update(student, 0.9999)
    step = teacher.module[0].weight - before
    expected = 1e-4 * (student[0].weight.float() - before)
    assert torch.allclose(step, expected, rtol=1e-2, atol=1e-9)
    assert teacher.module[0].weight.dtype == torch.float32


def test_state_dict_round_trip_through_a_parent_module() -> None:
    class Parent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.student = make_student()
            self.teacher = EMATeacher(self.student)

    saved = Parent()
    for seed in range(3):
        perturbed(saved.student, seed)
        saved.teacher.update(saved.student, 0.9)
    state = saved.state_dict()
    assert "teacher.module.0.weight" in state
    restored = Parent()
    assert not torch.equal(restored.teacher.module[0].weight, saved.teacher.module[0].weight)
    restored.load_state_dict(state)
    for key, value in saved.state_dict().items():
        assert torch.equal(restored.state_dict()[key], value), key
    assert not any(p.requires_grad for p in restored.teacher.parameters())


def test_teacher_stays_float32_when_the_parent_is_cast_and_forward_has_no_grad() -> None:
    parent = nn.ModuleDict({"student": make_student(), "teacher": EMATeacher(make_student())})
    parent.to(torch.bfloat16)
    assert parent["student"][0].weight.dtype == torch.bfloat16
    assert all(
        t.dtype == torch.float32 for t in parent["teacher"].state_dict().values() if t.is_floating_point()
    )
    parent.half()
    assert parent["teacher"].module[0].weight.dtype == torch.float32
    x = torch.randn(5, 4, requires_grad=True)
    out = parent["teacher"](x)
    assert out.shape == (5, 3) and not out.requires_grad


def test_always_eval_keeps_dropout_off_while_the_parent_trains() -> None:
    x = torch.randn(64, 4)
    frozen = EMATeacher(make_student()).train()
    assert not frozen.module.training and frozen.training
    assert torch.equal(frozen(x), frozen(x))
    following = EMATeacher(make_student(), always_eval=False).train()
    assert following.module.training
    assert not torch.equal(following(x), following(x))


def test_mismatched_student_or_tau_raise() -> None:
    teacher = EMATeacher(make_student())
    with pytest.raises(ValueError, match="do not match"):
        teacher.update(nn.Sequential(nn.Linear(4, 6)), 0.9)
    with pytest.raises(ValueError, match="tau"):
        teacher.update(make_student(), 1.5)
