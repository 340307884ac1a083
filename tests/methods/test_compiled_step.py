"""A compiled training step (`compile: true`) end to end on CPU: Lightning fit through torch.compile."""

import torch
from einops import rearrange
from torch import nn

from ssl_lightning.augment import ImageViews
from ssl_lightning.methods.simclr import SimCLR
from ssl_lightning.nn.optim import OptimizerConfig


class TinyConvEncoder(nn.Module):
    """`images[B, 3, 8, 8] -> (tokens[B, 16, 8], None)`: stride-2 conv, ReLU, per-token linear."""

    embed_dim = 8

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.fc = nn.Linear(8, 8)

    def forward(self, images, padding_mask=None):
        return self.fc(rearrange(self.conv(images).relu(), "b c h w -> b (h w) c")), None


def test_compiled_simclr_fits_with_finite_loss_and_updates_the_weights(quiet_trainer):
    torch.manual_seed(0)
    model = SimCLR(
        TinyConvEncoder(),
        ImageViews(jitter_p=0.0, grayscale_p=0.0),
        projection_dim=4,
        hidden_dim=16,
        optim=OptimizerConfig(lr=1e-2),
        compile=True,
    )
    before = {name: p.detach().clone() for name, p in model.encoder.named_parameters()}
    images = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    data = torch.utils.data.DataLoader([{"image": image} for image in images], batch_size=8)
    trainer = quiet_trainer(max_steps=3)
    trainer.fit(model, train_dataloaders=data)
    assert isinstance(model.encoder, torch._dynamo.eval_frame.OptimizedModule), "the encoder was not compiled"
    assert trainer.global_step == 3
    loss = trainer.callback_metrics["train/loss"]
    assert torch.isfinite(loss), f"compiled step gave loss {loss}"
    after = dict(model.encoder._orig_mod.named_parameters())
    unchanged = [name for name, value in before.items() if torch.equal(after[name], value)]
    assert not unchanged, f"weights not updated by the compiled steps: {unchanged}"
