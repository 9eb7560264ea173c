"""The virt-reconcile command: parses arguments, calls the pipeline, prints, sets the exit code."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from . import pipeline, report
from .apply import Options
from .errors import ManifestError, ReconcilerError
from .plan import Plan
from .schema import schema_text

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Declarative, GitOps-style reconciler for libvirt hosts.")

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
PathsArg = typer.Argument(..., help="manifest files or directories (*.yaml, *.yml, read recursively)")


def _fail(exc: ReconcilerError) -> None:
    if isinstance(exc, ManifestError):
        count = len(exc.diagnostics)
        typer.echo(f"Error: {count} problem{'s' if count != 1 else ''} in the manifests:", err=True)
        for diag in exc.diagnostics:
            typer.echo(f"  {diag}", err=True)
    else:
        typer.echo(f"Error: {exc}", err=True)
    raise typer.Exit(EXIT_ERROR)


@app.command()
def validate(paths: list[Path] = PathsArg) -> None:
    """Check manifests offline: YAML, schema, references. Exit 0 valid, 1 invalid."""
    try:
        manifest = pipeline.load(paths)
    except ReconcilerError as exc:
        _fail(exc)
    typer.echo(f"Valid: {len(manifest.items)} objects on {len(manifest.hosts)} host(s).")


@app.command()
def plan(paths: list[Path] = PathsArg,
         json_out: bool = typer.Option(False, "--json", help="print the plan as JSON on stdout"),
         out: Optional[Path] = typer.Option(None, "--out", help="save the plan for apply --plan"),
         host: Optional[str] = typer.Option(None, "--host", help="only this Host")) -> None:
    """Show what apply would change. Exit 0 no changes, 2 changes pending, 1 error."""
    try:
        the_plan = pipeline.plan(paths, host)
    except ReconcilerError as exc:
        _fail(exc)
    if out:
        the_plan.save(out)
    if json_out:
        report.plan_json(the_plan, sys.stdout)
    else:
        report.plan_text(the_plan, sys.stdout)
    if out and not json_out:
        typer.echo(f"\nSaved the plan to {out}; run: virt-reconcile apply --plan {out}")
    raise typer.Exit(EXIT_OK if the_plan.empty else EXIT_CHANGES)


@app.command()
def apply(paths: Optional[list[Path]] = typer.Argument(None, help="manifest files or directories"),
          plan_file: Optional[Path] = typer.Option(None, "--plan", help="apply this saved plan, without asking"),
          auto_approve: bool = typer.Option(False, "--auto-approve", help="do not ask for 'yes'"),
          host: Optional[str] = typer.Option(None, "--host", help="only this Host"),
          restart: bool = typer.Option(False, "--restart", help="restart guests whose changes need it"),
          allow_destroy: bool = typer.Option(False, "--allow-destroy", help="allow destructive actions"),
          shutdown_timeout: int = typer.Option(120, "--shutdown-timeout", help="seconds a guest gets to shut down"),
          force_stop: bool = typer.Option(False, "--force-stop", help="power off guests that do not shut down in time"),
          ) -> None:
    """Apply the manifests (or a saved plan). Exit 0 success, 1 any failure."""
    if bool(paths) == bool(plan_file):
        typer.echo("Error: give manifest PATHs or --plan FILE (one of them)", err=True)
        raise typer.Exit(EXIT_ERROR)
    try:
        the_plan = Plan.load(plan_file) if plan_file else pipeline.plan(paths, host)
    except ReconcilerError as exc:
        _fail(exc)
    report.plan_text(the_plan, sys.stdout)
    if the_plan.empty:
        raise typer.Exit(EXIT_OK)
    if not (auto_approve or plan_file):
        answer = typer.prompt("\nApply these changes? Only 'yes' is accepted", default="", show_default=False)
        if answer.strip() != "yes":
            typer.echo("Apply cancelled; nothing was changed.")
            raise typer.Exit(EXIT_ERROR)
    typer.echo("\nApplying:")
    try:
        results = pipeline.execute(the_plan, Options(restart, allow_destroy, shutdown_timeout, force_stop),
                                   progress=report.result_text)
    except ReconcilerError as exc:
        _fail(exc)
    typer.echo("\n" + report.results_summary(results))
    failed = any(r.status != "done" for r in results)
    raise typer.Exit(EXIT_ERROR if failed else EXIT_OK)


@app.command()
def schema(out: Optional[Path] = typer.Option(None, "--out", help="write to this file instead of stdout")) -> None:
    """Print the JSON Schema of the manifest documents."""
    text = schema_text()
    if out:
        out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def main() -> None:  # pragma: no cover - console entry convenience
    app()
