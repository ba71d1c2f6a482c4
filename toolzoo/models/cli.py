"""``toolzoo model list | prepare NAME [--force] | path NAME``."""

from __future__ import annotations

import argparse


def add_model_commands(sub) -> None:
    model = sub.add_parser("model", help="real pretrained models by name (prepared offline into a cache)")
    msub = model.add_subparsers(dest="model_command", required=True)
    p = msub.add_parser("list", help="registered models and whether they are prepared")
    p.set_defaults(func=_list)
    p = msub.add_parser("prepare", help="turn a registered model into a Hugging Face checkpoint in the cache, once")
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="prepare again even if the cache has it")
    p.set_defaults(func=_prepare)
    p = msub.add_parser("path", help="print the checkpoint folder a name (or path) resolves to")
    p.add_argument("name")
    p.set_defaults(func=_path)


def _list(args: argparse.Namespace) -> int:
    from toolzoo.models.registry import DONE, list_models, model_dir

    for spec in list_models():
        where = model_dir(spec.name)
        state = f"prepared: {where}" if (where / DONE).exists() else "not prepared"
        print(f"{spec.name}\t{spec.description}\t{state}")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    import sys

    from toolzoo.models.registry import prepare_model

    try:
        print(prepare_model(args.name, force=args.force))
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    return 0


def _path(args: argparse.Namespace) -> int:
    from toolzoo.models.registry import resolve_model

    print(resolve_model(args.name))
    return 0
