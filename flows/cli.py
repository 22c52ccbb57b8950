"""``magicvl``: one command, a subcommand per job. ``magicvl <command> --help`` for details."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from magicvl.flows.runtime import set_quiet_env

DEMO_RECIPE = Path(__file__).parent / "recipes" / "demo.yaml"


def cmd_curate(args: argparse.Namespace) -> int:
    """Run the whole job on a recipe: ingest → signals → combine → curated/stage=1..4 shards."""
    from magicvl.flows.curate import curate

    curate(str(args.recipe), output=args.output, force=args.force or [])
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    """Rerun scoring tasks: recompute signals (cache hits skipped unless --force), then combine."""
    from magicvl.flows.curate import score

    score(
        str(args.recipe),
        signals=args.signal,
        datasets=args.dataset,
        output=args.output,
        force=args.force,
        then_combine=not args.no_combine,
    )
    return 0


def cmd_combine(args: argparse.Namespace) -> int:
    """Re-tune: recompute scores and stages from stored signals after editing weights or split rules."""
    from magicvl.flows.curate import combine

    combine(str(args.recipe), output=args.output, force=args.force)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    """Describe an output folder: schema, row counts, stage × category, numeric summaries, a few rows."""
    from magicvl.flows.inspect import inspect_folder

    print(inspect_folder(args.folder, rows=args.rows))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate a recipe and print it with every default filled in."""
    import yaml

    from magicvl.flows.recipe import load_recipe

    recipe = load_recipe(args.recipe)
    print(yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False), end="")
    print(f"# recipe hash {recipe.digest()}; output root {recipe.output_root}")
    return 0


def cmd_signals(args: argparse.Namespace) -> int:
    """List the registered signals, their axis, version and parameters."""
    from magicvl.scoring.signals import SIGNALS

    for s in SIGNALS.values():
        print(f"{s.name}  (axis {s.axis}, version {s.version}){'  [computed during ingestion]' if s.per_image else ''}")
        print(f"    {s.description}")
        for name, f in s.params.model_fields.items():
            default = "required" if f.is_required() else f"default {f.default!r}"
            print(f"    - {name}: {f.description or ''} ({default})")
    return 0


def cmd_build_tiny_models(args: argparse.Namespace) -> int:
    """Build the tiny randomly initialised checkpoints tests and the demo use (no download)."""
    from magicvl.model.tiny import TINY_BUILDERS

    out = Path(args.out)
    for name, build in TINY_BUILDERS.items():
        print(f"{name} (tiny, random, built locally — not real weights): {build(out / name)}")
    return 0


def cmd_sample_data(args: argparse.Namespace) -> int:
    """Generate the bundled sample dataset (all 8 categories, a few broken records) into a folder."""
    from magicvl.sample_data import generate

    sample = generate(Path(args.out), n_records=args.records, seed=args.seed)
    print(f"sample data written to {args.out}: {sample.total_records} records")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job on the embedded default: tiny models + sample data + the curate flow + summary."""
    from magicvl.flows.demo import run_demo

    run_demo(Path(args.work), records=args.records, recipe_name="demo-models.yaml" if args.all_signals else "demo.yaml")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="magicvl", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, metavar="<command>")

    def add(name: str, fn: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=fn.__doc__.splitlines()[0], description=fn.__doc__)
        sp.set_defaults(func=fn)
        return sp

    c = add("curate", cmd_curate)
    c.add_argument("recipe", type=Path, help="recipe YAML file")
    c.add_argument("--output", help="output root (overrides the recipe's `output`)")
    c.add_argument(
        "--force",
        nargs="*",
        choices=["ingest", "signals", "combine"],
        metavar="STEP",
        help="recompute these steps even where outputs exist (ingest, signals, combine)",
    )
    s = add("score", cmd_score)
    s.add_argument("recipe", type=Path, help="recipe YAML file")
    s.add_argument("--signal", action="append", help="signal to rerun (repeatable; default: all configured)")
    s.add_argument("--dataset", action="append", help="only these datasets (repeatable; default: all)")
    s.add_argument("--output", help="output root (overrides the recipe's `output`)")
    s.add_argument("--force", action="store_true", help="recompute even where the cache key matches")
    s.add_argument("--no-combine", action="store_true", help="only compute signals; do not rewrite the curriculum")
    m = add("combine", cmd_combine)
    m.add_argument("recipe", type=Path, help="recipe YAML file")
    m.add_argument("--output", help="output root (overrides the recipe's `output`)")
    m.add_argument("--force", action="store_true", help="rewrite every shard even if unchanged")
    i = add("inspect", cmd_inspect)
    i.add_argument("folder", type=Path, help="a run's output root or any table folder under it")
    i.add_argument("--rows", type=int, default=3, help="how many rows to show (default 3)")
    v = add("validate", cmd_validate)
    v.add_argument("recipe", type=Path, help="recipe YAML file")
    add("signals", cmd_signals)
    t = add("build-tiny-models", cmd_build_tiny_models)
    t.add_argument("out", type=Path, help="folder to write the checkpoints into")
    d = add("sample-data", cmd_sample_data)
    d.add_argument("out", type=Path, help="folder to write the sample dataset into")
    d.add_argument("--records", type=int, default=None, help="scale to this many records (benchmarks)")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    e = add("demo", cmd_demo)
    e.add_argument("--work", type=Path, default=Path("work/demo"), help="working folder (default work/demo)")
    e.add_argument("--records", type=int, default=None, help="scale the sample data to this many records")
    e.add_argument(
        "--all-signals",
        action="store_true",
        help="all six signals incl. OCR and detection (recipes/demo-models.yaml; minutes on a CPU)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    set_quiet_env()
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume (finished work is skipped)", file=sys.stderr)
        return 130
    except Exception as e:
        from magicvl.flows.recipe import RecipeError

        if isinstance(e, (RecipeError, FileNotFoundError)):
            print(f"error: {e}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
