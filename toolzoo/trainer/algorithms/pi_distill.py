"""``algorithm: pi_distill``: the teacher (PI in context) rolls out; joint teacher/student update."""

from toolzoo.trainer.algorithms import register_algorithm, warmup


@register_algorithm("pi_distill", privileged=True)
def phases(ctx, convs):
    from toolzoo.trainer.loop import pi_distill_phase

    return [*warmup(ctx, convs), pi_distill_phase(ctx)]
