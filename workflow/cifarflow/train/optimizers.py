"""A variant's optimizer and learning-rate schedule from its ``train`` settings, with what the fast recipes need
beyond Keras's own (registered, so checkpoints load)."""

import keras

from .recipe import Train


@keras.saving.register_keras_serializable(package="cifarflow")
class Triangular(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from ``initial_fraction * peak`` to ``peak`` at ``peak_step``, then linear decay to
    ``final_fraction * peak`` at ``total_steps`` (the one-cycle shape of the airbench recipe)."""

    def __init__(self, peak: float, total_steps: int, peak_step: int, initial_fraction: float = 0.2,
                 final_fraction: float = 0.0):
        self.peak = peak
        self.total_steps = total_steps
        self.peak_step = peak_step
        self.initial_fraction = initial_fraction
        self.final_fraction = final_fraction

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        rise = self.initial_fraction + (1 - self.initial_fraction) * step / max(1, self.peak_step)
        progress = keras.ops.minimum(1.0, (step - self.peak_step) / max(1, self.total_steps - self.peak_step))
        fall = 1 + (self.final_fraction - 1) * progress
        return self.peak * keras.ops.where(step < self.peak_step, rise, fall)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "peak_step": self.peak_step,
                "initial_fraction": self.initial_fraction, "final_fraction": self.final_fraction}


@keras.saving.register_keras_serializable(package="cifarflow")
class BiasScaledSGD(keras.optimizers.SGD):
    """SGD in which the batch-norm shifts (``beta``) learn ``bias_lr_scale`` times faster than the weights, as the
    airbench recipe trains its biases."""

    def __init__(self, bias_lr_scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.bias_lr_scale = bias_lr_scale

    def build(self, variables):
        super().build(variables)
        self._is_shift = [variable.path.endswith("beta") for variable in variables]

    def update_step(self, gradient, variable, learning_rate):
        if self._is_shift[self._get_variable_index(variable)]:
            learning_rate = keras.ops.multiply(learning_rate, self.bias_lr_scale)
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return super().get_config() | {"bias_lr_scale": self.bias_lr_scale}


def learning_rate(train: Train, steps_per_epoch: int):
    """The peak learning rate, or its schedule over ``epochs * steps_per_epoch`` steps (warm-up included)."""
    lr = train.lr
    total_steps = train.epochs * steps_per_epoch
    if train.warmup_fraction is not None:  # scales with the epochs, so a budget or a benchmark keeps the schedule's shape
        warmup = int(train.warmup_fraction * total_steps)
    else:
        warmup = int(train.warmup_epochs * steps_per_epoch)
    if train.schedule == "triangular":
        return Triangular(lr, total_steps, warmup, train.initial_lr_fraction, train.final_lr_fraction)
    if train.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=lr * train.initial_lr_fraction if warmup else lr,
            decay_steps=max(1, total_steps - warmup),
            alpha=train.final_lr_fraction,
            warmup_target=lr if warmup else None,
            warmup_steps=warmup,
        )
    return lr


def make_optimizer(train: Train, steps_per_epoch: int):
    """The variant's optimizer (adam, sgd or rmsprop) with its schedule and, with ``ema``, a moving average."""
    lr = learning_rate(train, steps_per_epoch)
    ema = {"use_ema": True, "ema_momentum": train.ema} if train.ema else {}
    name = train.optimizer
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=lr, **ema)
    if name == "sgd":
        return BiasScaledSGD(learning_rate=lr, momentum=train.momentum, nesterov=train.nesterov,
                             bias_lr_scale=train.bias_lr_scale, **ema)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=lr, **ema)
    raise ValueError(f"unknown optimizer {name!r}; use adam, sgd or rmsprop")
