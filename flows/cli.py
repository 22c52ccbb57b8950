"""magicvl: one command, a subcommand per job. `magicvl <command> --help` for details.

Paths given on the command line resolve against the current directory; paths
inside a recipe resolve against the recipe's folder.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from magicvl.flows.runtime import set_quiet_env, warm_start

DEMO_RECIPE = Path(__file__).parent / "recipes" / "demo.yaml"


STEPS = ("ingest", "translate", "quality", "signals", "combine")


def forced_steps(force: list[str] | None) -> list[str]:
    """`--force STEP...` → those steps; a bare `--force` → every step; no `--force` → none."""
    return list(STEPS) if force == [] else list(force or [])


def _resume_hint() -> str:
    return "magicvl " + shlex.join(sys.argv[1:])


FLOW_MODULES = ("magicvl.flows.curate",)  # imported inside warm_start: Prefect then finds the run's API


def _out_path(text: str):
    """An output path on the command line: a local Path, or an S3Path for s3:// (endpoint from the environment)."""
    from magicvl.storage.outfs import as_path

    return as_path(text)


def cmd_curate(args: argparse.Namespace) -> int:
    """Run the whole job on a recipe: ingest → signals → combine → curated/stage-1..4 shards."""
    from magicvl.flows.preflight import check_run, cli_path

    output = cli_path(args.output)
    recipe = check_run(args.recipe, output)
    from magicvl.flows.preflight import UsageError
    from magicvl.flows.sample_run import sample_root_problem

    try:  # a bad fraction, or a sample into the full run's root, is refused before anything starts
        problem = sample_root_problem(str(args.recipe), recipe, args.sample_chunks)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if problem:
        raise UsageError(problem)
    force = forced_steps(args.force)
    from magicvl.flows.interrupt import stop_on_interrupt

    with stop_on_interrupt(_resume_hint()), warm_start(args.recipe, output, FLOW_MODULES):
        from magicvl.flows.curate import curate  # imported by warm_start (after the API is known)

        curate(str(args.recipe.resolve()), output=output, force=force, sample_chunks=args.sample_chunks)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    """Rerun scoring tasks: recompute signals (cache hits skipped unless --force), then combine."""
    from magicvl.flows.preflight import check_run, cli_path

    output = cli_path(args.output)
    check_run(args.recipe, output, signals=args.signal, datasets=args.dataset, needs_inputs=False)
    from magicvl.flows.interrupt import stop_on_interrupt

    with stop_on_interrupt(_resume_hint()), warm_start(args.recipe, output, FLOW_MODULES):
        from magicvl.flows.curate import score  # imported by warm_start (after the API is known)

        score(
            str(args.recipe.resolve()),
            signals=args.signal,
            datasets=args.dataset,
            output=output,
            force=args.force,
            then_combine=not args.no_combine,
        )
    return 0


def cmd_combine(args: argparse.Namespace) -> int:
    """Re-tune: recompute scores and stages from stored signals after editing weights or split rules."""
    from magicvl.flows.preflight import check_run, cli_path

    output = cli_path(args.output)
    check_run(args.recipe, output, needs_inputs=False)
    from magicvl.flows.interrupt import stop_on_interrupt

    with stop_on_interrupt(_resume_hint()), warm_start(args.recipe, output, FLOW_MODULES):
        from magicvl.flows.curate import combine  # imported by warm_start (after the API is known)

        combine(str(args.recipe.resolve()), output=output, force=args.force)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    """Describe an output folder: schema, row counts, stage × category, quantiles, cut-offs, reasons, a few rows."""
    from magicvl.flows.report.inspect import inspect_folder

    print(inspect_folder(args.folder, rows=args.rows))
    if args.plots:
        from magicvl.flows.report.report_html import write_report
        from magicvl.storage.layout import find_root

        root = args.folder if (args.folder / "samples").is_dir() else find_root(args.folder.resolve())
        page = write_report(root)
        print(f"plots and report written to {page.parent}/ (open {page})")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write a static HTML report of a run (tables, plots, example samples) that opens from disk."""
    from magicvl.flows.preflight import cli_path
    from magicvl.flows.report.report_html import write_report

    root = args.run
    if root.suffix in (".yaml", ".yml"):
        from magicvl.flows.preflight import check_run

        root = check_run(root, needs_inputs=False).output_root
    if not (root / "samples").is_dir():
        raise FileNotFoundError(f"{root} is not a run's output root (no samples/ folder)")
    page = write_report(root, cli_path(args.out))
    print(f"report: {page}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """Project a run's wall time, CPU- and GPU-hours per step at N records from a finished calibration run."""
    from magicvl.flows.plan import make_plan, plan_text

    print(plan_text(make_plan(str(args.recipe), args.records, args.cluster, args.calibration)))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate a recipe and print it with every default filled in; GPUs per step are checked against
    the cluster's nodes (``--offline``: the recipe alone)."""
    import yaml

    from magicvl.flows.recipe import RecipeError, load_recipe

    recipe = load_recipe(args.recipe)
    checked = "cluster not checked (--offline)"
    if not args.offline:
        from magicvl.flows.gpu_plan import check_cluster

        problems, checked = check_cluster(recipe)
        if problems:
            raise RecipeError(f"recipe {args.recipe}: {problems[0]}")
    print(yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False), end="")
    print(f"# recipe hash {recipe.digest()}; output root {recipe.output_root}")
    print(f"# {checked}")
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
    from magicvl.model.tiny_vl import build_tiny_vlms

    for name, p in build_tiny_vlms(out / "vlm").items():
        print(f"{name} (tiny random VLM, for cross_modal.models): {p}")
    return 0


def cmd_sample_data(args: argparse.Namespace) -> int:
    """Generate the bundled sample dataset (all 8 categories, a few broken records) into a folder."""
    from magicvl.sample_data import generate

    if args.samples_per_image is not None and args.records is None:
        print("error: --samples-per-image: applies to a scaled set only; give --records N too", file=sys.stderr)
        return 2
    if args.samples_per_image is not None and not args.samples_per_image >= 1:
        print(f"error: --samples-per-image: must be >= 1, got {args.samples_per_image}", file=sys.stderr)
        return 2
    sample = generate(Path(args.out), n_records=args.records, seed=args.seed, samples_per_image=args.samples_per_image)
    print(
        f"sample data written to {args.out}: {sample.total_records} records, {sample.distinct_images} distinct images"
        f" ({sample.samples_per_image:.2f} image records per distinct image)"
    )
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    """Write an HTML review sheet of N random records per dataset (and a sidecar YAML for the decision)."""
    from magicvl.flows.review import review_main

    return review_main(args.source, args.dataset, args.out, args.n, args.seed, args.image_root)


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job: the whole DAG (curate with every signal, train and evaluate each stage); --quick: curate only."""
    from magicvl.flows.demo import run_demo
    from magicvl.flows.interrupt import stop_on_interrupt

    with stop_on_interrupt(_resume_hint()):
        if args.quick or args.all_signals:
            recipe_name = "demo-models.yaml" if args.all_signals else "demo.yaml"
            run_demo(Path(args.work), records=args.records, recipe_name=recipe_name)
        else:  # the whole DAG: every signal, S_task, eval split, training and evaluation of every stage
            from magicvl.flows.demo_full import run_full_demo

            run_full_demo(Path(args.work), records=args.records)
    return 0


def cmd_train_stage(args: argparse.Namespace) -> int:
    """Train one curriculum stage (DeepSpeed, launched as a subprocess) from the recipe's `train:` section."""
    from magicvl.flows.recipe import load_recipe
    from magicvl.flows.train import train_section, train_stage

    train_section(load_recipe(args.recipe))  # a recipe that cannot train fails here, before a flow starts
    print(train_stage(str(args.recipe), args.stage, init_from=args.init_from, node_rank=args.node_rank))
    return 0


def cmd_train_curriculum(args: argparse.Namespace) -> int:
    """Train stages 1 → 4 in order, each from the previous stage's final checkpoint."""
    from magicvl.flows.recipe import load_recipe
    from magicvl.flows.train import train_curriculum, train_section

    train_section(load_recipe(args.recipe))
    print("\n".join(train_curriculum(str(args.recipe))))
    return 0


def cmd_compare_orders(args: argparse.Namespace) -> int:
    """The paper's Table 4: train every order from the same start, seed and token budget; compare on eval."""
    from magicvl.flows.compare_orders import compare_orders
    from magicvl.flows.recipe import load_recipe
    from magicvl.flows.train import train_section

    train_section(load_recipe(args.recipe))
    compare_orders(str(args.recipe), args.orders)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a trained stage's final checkpoint on the held-out split (curated/eval/): per category NLL and
    next-token accuracy, written to `<stage>/eval.json`."""
    from magicvl.flows.evaluate import evaluate_stage
    from magicvl.flows.recipe import load_recipe
    from magicvl.flows.train import train_section

    train_section(load_recipe(args.recipe))
    evaluate_stage(str(args.recipe), args.stage)
    return 0


def _verify_flag(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--verify",
        action="store_true",
        help="hash every output before reusing it (MAGICVL_VERIFY=sha256; default: size, footer, mtime)",
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="magicvl", description=_plain(__doc__))
    sub = p.add_subparsers(dest="command", required=True, metavar="<command>")

    def add(name: str, fn: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        doc = _plain(fn.__doc__)
        sp = sub.add_parser(name, help=doc.splitlines()[0], description=doc)
        sp.set_defaults(func=fn)
        return sp

    c = add("curate", cmd_curate)
    c.add_argument("recipe", type=Path, help="recipe YAML file")
    c.add_argument("--output", help="output root (overrides the recipe's `output`)")
    c.add_argument(
        "--force",
        nargs="*",
        choices=list(STEPS),
        metavar="STEP",
        help="recompute these steps even where outputs exist (ingest, translate, quality, signals, combine); "
        "--force alone recomputes every step",
    )
    c.add_argument(
        "--sample-chunks",
        type=float,
        metavar="F",
        help="a calibration run for `magicvl plan`: only every round(1/F)-th chunk of each dataset (0 < F ≤ 1), "
        "into an --output root apart from the full run's",
    )
    _verify_flag(c)
    s = add("score", cmd_score)
    s.add_argument("recipe", type=Path, help="recipe YAML file")
    s.add_argument("--signal", action="append", help="signal to rerun (repeatable; default: all configured)")
    s.add_argument("--dataset", action="append", help="only these datasets (repeatable; default: all)")
    s.add_argument("--output", help="output root (overrides the recipe's `output`)")
    s.add_argument("--force", action="store_true", help="recompute even where the cache key matches")
    s.add_argument("--no-combine", action="store_true", help="only compute signals; do not rewrite the curriculum")
    _verify_flag(s)
    m = add("combine", cmd_combine)
    m.add_argument("recipe", type=Path, help="recipe YAML file")
    m.add_argument("--output", help="output root (overrides the recipe's `output`)")
    m.add_argument("--force", action="store_true", help="rewrite every shard even if unchanged")
    i = add("inspect", cmd_inspect)
    i.add_argument("folder", type=_out_path, help="a run's output root or any table folder under it")
    i.add_argument("--rows", type=int, default=3, help="how many rows to show (default 3)")
    i.add_argument("--plots", action="store_true", help="also write the plots and HTML report into <root>/report/")
    r = add("report", cmd_report)
    r.add_argument("run", type=_out_path, help="a run's output root (or its recipe YAML)")
    r.add_argument("--out", help="folder to write into (default <root>/report/)")
    pl = add("plan", cmd_plan)
    pl.add_argument("recipe", type=Path, help="recipe YAML file (its resources are the target's)")
    pl.add_argument("--records", type=int, required=True, help="records of the run to plan")
    pl.add_argument("--cluster", help="nodes=N,cpus=N,gpus=N (per node; default: the calibration run's cluster)")
    pl.add_argument("--calibration", help="a curate run's manifest or output root (default: the recipe's output)")
    v = add("validate", cmd_validate)
    v.add_argument("recipe", type=Path, help="recipe YAML file")
    v.add_argument("--offline", action="store_true", help="check the recipe only, not the GPUs of its cluster")
    add("signals", cmd_signals)
    t = add("build-tiny-models", cmd_build_tiny_models)
    t.add_argument("out", type=Path, help="folder to write the checkpoints into")
    d = add("sample-data", cmd_sample_data)
    d.add_argument("out", type=Path, help="folder to write the sample dataset into")
    d.add_argument("--records", type=int, default=None, help="scale to this many records (benchmarks)")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.add_argument(
        "--samples-per-image",
        type=float,
        default=None,
        help="with --records: records per distinct image, all kinds (default: 2 for instruction data, 1 for captions"
        " and documents)",
    )
    r = add("review", cmd_review)
    r.add_argument("source", type=Path, help="a recipe YAML, or one raw dataset file (.json/.jsonl/.parquet/.tar)")
    r.add_argument("--dataset", action="append", help="recipe datasets to review (repeatable; default: all)")
    r.add_argument("--out", type=Path, default=Path("review"), help="folder for the sheets (default review/)")
    r.add_argument("-n", type=int, default=24, help="records per sheet (default 24)")
    r.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    r.add_argument("--image-root", help="image folder of a raw dataset file given directly")
    e = add("demo", cmd_demo)
    e.add_argument("--work", type=Path, default=Path("work/demo"), help="working folder (default work/demo)")
    e.add_argument("--records", type=int, default=None, help="scale the sample data to this many records")
    e.add_argument(
        "--all-signals",
        action="store_true",
        help="curate only, with all six signals incl. OCR and detection (recipes/demo-models.yaml)",
    )
    e.add_argument(
        "--quick",
        action="store_true",
        help="the model-free data side only: L, T, P, E and curate (recipes/demo.yaml); no training",
    )
    ts = add("train-stage", cmd_train_stage)
    ts.add_argument("recipe", type=Path, help="recipe YAML file with a `train:` section")
    ts.add_argument("--stage", type=int, required=True, choices=[1, 2, 3, 4], help="stage to train")
    ts.add_argument("--init-from", help="checkpoint to start from (default: the previous stage's final/)")
    ts.add_argument("--node-rank", type=int, help="this node's rank when train.launch.nnodes > 1 (torchrun)")
    tc = add("train-curriculum", cmd_train_curriculum)
    tc.add_argument("recipe", type=Path, help="recipe YAML file with a `train:` section")
    ev = add("evaluate", cmd_evaluate)
    ev.add_argument("recipe", type=Path, help="recipe YAML file with a `train:` section")
    ev.add_argument("--stage", type=int, required=True, choices=[1, 2, 3, 4], help="stage to evaluate")
    co = add("compare-orders", cmd_compare_orders)
    co.add_argument("recipe", type=Path, help="recipe YAML file with a `train:` section (after curation)")
    co.add_argument("--orders", nargs="+", choices=["all_at_once", "categorized", "curriculum"], help="default: all")
    from magicvl.flows.export_cli import add_parser as add_export

    add_export(add)
    return p


def _plain(doc: str | None) -> str:
    """A docstring for the terminal: reST ``literals`` shown as `literals`."""
    return re.sub(r"``(.+?)``", r"`\1`", doc or "")


def main(argv: list[str] | None = None) -> int:
    set_quiet_env()
    args = _parser().parse_args(argv)
    if getattr(args, "verify", False):
        import os

        os.environ["MAGICVL_VERIFY"] = "sha256"  # read by storage.verify, inherited by local Ray workers
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"interrupted; to resume (finished work is skipped) run: {_resume_hint()}", file=sys.stderr)
        return 130
    except Exception as e:
        from magicvl.flows.preflight import UsageError
        from magicvl.flows.recipe import RecipeError

        if isinstance(e, (RecipeError, UsageError, FileNotFoundError, FileExistsError)):
            print(f"error: {e}", file=sys.stderr)
            return 2
        from magicvl.storage.diskfull import DiskFullError
        from magicvl.storage.lock import OutputLockedError

        if isinstance(e, (DiskFullError, OutputLockedError)):  # one clear line, no traceback
            print(f"error: {e}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
