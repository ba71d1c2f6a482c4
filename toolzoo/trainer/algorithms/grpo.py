"""``algorithm: grpo`` (and its loss types: dr_grpo, dapo, gspo): optional SFT warm-up, then GRPO."""

from toolzoo.trainer.algorithms import register_algorithm, warmup


@register_algorithm("grpo")
def phases(ctx, convs):
    from toolzoo.trainer.loop import grpo_phase

    return [*warmup(ctx, convs), grpo_phase(ctx)]
