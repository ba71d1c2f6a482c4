"""``algorithm: sft``: supervised fine-tuning on the configured conversations."""

from toolzoo.trainer.algorithms import register_algorithm


@register_algorithm("sft")
def phases(ctx, convs):
    from toolzoo.trainer.loop import sft_phase

    return [sft_phase(ctx, ctx.config.steps, ctx.config.learning_rate, convs())]
