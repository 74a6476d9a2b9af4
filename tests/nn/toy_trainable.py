"""A toy enhancement trainable for tests: registering it makes it appear in the CLI and the
Training widget (the promise of the trainable registry)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from napari_mpi.nn.trainers import Input, Trainable
from napari_mpi.nn.training import Recipe, Stage, TrainConfig, iter_train


@dataclass
class ToyConfig(TrainConfig):
    epochs: int = field(default=2, metadata={"help": "training epochs", "min": 1})
    width: int = field(default=3, metadata={"help": "toy layer width", "min": 1})


class ToyRecipe(Recipe):
    method = "toy3d"
    score_key = "val_mse"

    def __init__(self, config, volumes):
        super().__init__(config)
        self.volumes = np.load(volumes)["train_images"].astype(np.float32)

    def prepare(self):
        import torch

        self.modules["model"] = torch.nn.Conv3d(1, 1, self.config.width, padding="same")
        self.x = torch.from_numpy(self.volumes[:, None]).to(self.device)
        yield from ()

    def stages(self):
        return [Stage.even("toy", self.config.epochs, 2)]

    def optimisers(self, stage):
        import torch

        return {"adam": torch.optim.Adam(self.modules["model"].parameters(), self.config.lr)}

    def step(self, stage, epoch, index, optimisers):
        loss = ((self.modules["model"](self.x) - self.x) ** 2).mean()
        optimisers["adam"].zero_grad()
        loss.backward()
        optimisers["adam"].step()
        return {"loss": float(loss.detach())}

    def validate(self, epoch):
        return {"val_mse": float(((self.modules["model"](self.x) - self.x) ** 2).mean())}


TOY = Trainable(
    name="toy3d",
    title="toy 3D enhancer",
    task="enhance",
    config=ToyConfig,
    train=lambda config, output, volumes=None: iter_train(ToyRecipe(config, volumes), output),
    inputs=(Input("volumes", "training volumes (.npz)", kind="npz", required=True),),
    description="train a toy 3D enhancer",
)


def write_volumes(path):
    rng = np.random.default_rng(0)
    np.savez(path, train_images=rng.random((2, 6, 6, 6)), val_images=rng.random((1, 6, 6, 6)),
             test_images=rng.random((1, 6, 6, 6)))  # fmt: skip
    return path
