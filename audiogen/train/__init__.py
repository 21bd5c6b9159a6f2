"""Training helpers shared by every model: precision, AdamW with stochastic rounding,
torchrun (DDP / FSDP2), atomic checkpoints with exact resume, TOML recipes, logging, and
the loop that a model's step function plugs into (see :mod:`audiogen.train.tasks`)."""
