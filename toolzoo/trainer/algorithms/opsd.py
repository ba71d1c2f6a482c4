"""``algorithm: opsd``: the student rolls out; the teacher (PI in context) scores its tokens."""

from toolzoo.trainer.algorithms import register_algorithm, warmup


@register_algorithm("opsd", privileged=True)
def phases(ctx, convs):
    from toolzoo.trainer.loop import opsd_phase

    return [*warmup(ctx, convs), opsd_phase(ctx)]
