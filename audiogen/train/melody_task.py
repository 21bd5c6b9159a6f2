"""The melody training task: Markov, LSTM or Transformer melody models on symbolic tunes.

``audiogen train melody --recipe recipes/melody_transformer.toml --out DIR``. The recipe's
``[model] kind`` picks the model. The neural models minimise next-token cross-entropy on the
tunes' tokens after the conditions. The Markov chain is counted from the training split
when it is built; the loop then fits its per-order backoff weights on leave-one-out
likelihood (see :mod:`audiogen.melody.markov`). Checkpoints load with
:func:`audiogen.melody.model.load_model`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from audiogen.melody.dataset import MelodyBatch, MelodyData, MelodyDataConfig, load_split
from audiogen.melody.markov import MarkovModel
from audiogen.melody.model import FORMAT, MelodyModelConfig, build_model
from audiogen.melody.tokens import CONDITION_LEN, get_tokenizer
from audiogen.train.config import OptimConfig, TrainConfig
from audiogen.train.distributed import unwrap
from audiogen.train.precision import PrecisionPolicy
from audiogen.train.tasks import StepOutput, Task


@dataclass
class MelodyRecipe:
    model: MelodyModelConfig = field(default_factory=MelodyModelConfig)
    data: MelodyDataConfig = field(default_factory=MelodyDataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _build_model(recipe: MelodyRecipe) -> nn.Module:
    cfg = recipe.model
    if cfg.kind != "markov":
        return build_model(cfg)
    tok = get_tokenizer()
    data = MelodyData(load_split(recipe.data, "train"), recipe.data)
    return MarkovModel.fit(
        data.all_sequences(),
        vocab_size=tok.vocab_size,
        order=cfg.order,
        pad_id=tok.pad_id,
        scored_from=CONDITION_LEN,
        min_count=cfg.min_count,
    )


def _build_dataset(recipe: MelodyRecipe) -> MelodyData:
    return MelodyData(load_split(recipe.data), recipe.data)


def melody_step(
    model: nn.Module, batch: MelodyBatch, precision: PrecisionPolicy | None
) -> StepOutput:
    """Mean negative log-likelihood (nats) of the tokens after the conditions.

    The Markov chain scores with leave-one-out counts (its training tunes are counted)."""
    ids = batch.ids
    s = ids.shape[1]
    pos = torch.arange(1, s, device=ids.device)
    mask = (pos[None] >= CONDITION_LEN) & (pos[None] < batch.lengths[:, None])  # [B, S-1]
    core = unwrap(model)
    if isinstance(core, MarkovModel):
        nll = -core.token_log_probs(ids, loo=True)
    else:
        logits = model(ids[:, :-1])
        nll = F.cross_entropy(logits.float().transpose(1, 2), ids[:, 1:], reduction="none")
    n = mask.sum()
    loss = (nll * mask).sum() / n.clamp_min(1)
    return StepOutput(
        loss=loss,
        metrics={"bits_per_token": loss.item() / math.log(2)},
        items=int(n),
    )


TASK = Task(
    name="melody",
    help="a melody model (Markov, LSTM or Transformer) on folk and chorale tunes",
    recipe_cls=MelodyRecipe,
    build_model=_build_model,
    build_dataset=_build_dataset,
    step=melody_step,
    items_unit="tokens",
    checkpoint_meta={"format": FORMAT, "version": 1},
)
