"""Where an audio encoder keeps what a hares-mini task needs: a logistic-regression probe on the
mean-pooled front-end output (`embed_tokens`) and on every hidden state (`hidden_states`: the input of
the first block, then each block's output) of a method checkpoint's encoder and of the same encoder at
random initialisation (scikit-learn, features standardised on the train split, accuracy on valid).

It showed why a short data2vec run on CPU lost the pitch of the music clips: the trained conv feature
encoder itself had lost it (see benchmarks/README.md, "data2vec").

    lightning fit --config recipes/data2vec_speech_hares_mini.yaml --model.init_args.feature_grad_mult 1.0 \\
        --trainer.callbacks=[] --checkpoint.dirpath runs/d2v_trained_cnn
    python benchmarks/data2vec_layer_probe.py runs/d2v_trained_cnn/last.ckpt --task music_pitch
"""

import argparse
from pathlib import Path

import torch
from common import report
from sklearn.linear_model import LogisticRegression

from ssl_lightning.data import HaresMiniDataModule
from ssl_lightning.eval.evaluate import random_init_like
from ssl_lightning.methods import load_method


def pooled_layers(encoder: torch.nn.Module, loader) -> tuple[torch.Tensor, torch.Tensor]:
    """`[N, L + 2, D]` mean-pooled front-end output and hidden states of every clip, and the labels."""
    features, labels = [], []
    with torch.no_grad():
        for batch in loader:
            audio, padding = batch["audio"], batch.get("padding_mask")
            tokens, _ = encoder.embed_tokens(audio, padding)
            states = encoder.hidden_states(audio, padding)
            features.append(torch.stack([tokens.mean(1)] + [h.mean(1) for h in states], 1))
            labels.append(batch["label"])
    return torch.cat(features), torch.cat(labels)


def probe(train: tuple, valid: tuple) -> list[float]:
    """Valid accuracy (%) of a logistic regression per layer."""
    (x_train, y_train), (x_valid, y_valid) = train, valid
    scores = []
    for layer in range(x_train.shape[1]):
        mean, std = x_train[:, layer].mean(0), x_train[:, layer].std(0) + 1e-6
        model = LogisticRegression(max_iter=500).fit(
            ((x_train[:, layer] - mean) / std).numpy(), y_train.numpy()
        )
        scores.append(100 * model.score(((x_valid[:, layer] - mean) / std).numpy(), y_valid.numpy()))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", type=Path, help="a method checkpoint with a data2vec audio encoder")
    parser.add_argument("--task", default="music_pitch", help="a hares-mini task")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    trained = load_method(args.checkpoint).encoder.eval()
    encoders = {"random-init": random_init_like(trained, 0).eval(), "trained": trained}
    datamodule = HaresMiniDataModule(task=args.task, batch_size=32)
    datamodule.prepare_data()
    datamodule.setup("fit")
    scores = {
        name: probe(
            pooled_layers(e, datamodule.train_dataloader()), pooled_layers(e, datamodule.val_dataloader())
        )
        for name, e in encoders.items()
    }
    names = ["front-end"] + [f"hidden {i}" for i in range(len(scores["trained"]) - 1)]
    rows = [
        f"| {n} | {scores['random-init'][i]:.1f} | {scores['trained'][i]:.1f} |" for i, n in enumerate(names)
    ]
    table = "\n".join(
        [
            f"{args.task} valid accuracy (%) per layer",
            "",
            "| layer | random-init | trained |",
            "|---|---|---|",
            *rows,
        ]
    )
    report(table, {"task": args.task, "layers": names, **scores}, args.out)


if __name__ == "__main__":
    main()
