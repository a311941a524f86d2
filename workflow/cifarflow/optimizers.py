"""What the fast recipes need beyond Keras's own optimizers and schedules (registered, so checkpoints load)."""

import keras


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
