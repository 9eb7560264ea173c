"""The virt-reconcile command: parses arguments, calls the pipeline, prints, sets the exit code."""
from __future__ import annotations

import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from . import console, pipeline, report
from .apply import Options
from .errors import ManifestError, ReconcilerError
from .pipeline import PlanOptions
from .plan import Plan



_LABELS = {"<str>": "TEXT", "<int>": "INTEGER", "<float>": "SECONDS", "<path>": "PATH", "<Path>": "PATH"}


def _label(param, ctx) -> str | None:
    """How an option's value is shown in --help: its metavar, else a plain name of its type (a
    flag shows none); never typer's `<bool>`/`<list[Path]>` labels."""
    if getattr(param, "is_flag", False):
        return None
    if param.metavar:
        return param.metavar
    shown = param.display_type(ctx)
    return _LABELS.get(shown, shown.strip("<>").upper())


class _Command(typer.core.TyperCommand):
    """Plain click-style help: `PATH...`, `--host TEXT`, flags without a type label."""

    def format_help(self, ctx, formatter) -> None:
        for param in self.params:
            if isinstance(param, typer.core.TyperArgument):
                param.display_type_rich = lambda ctx=None: None
                param.get_usage_pieces = lambda ctx, p=param: [(p.metavar or p.name.upper())
                                                               + ("..." if p.nargs != 1 else "")]
            else:
                param.display_type_rich = lambda ctx=None, p=param: _label(p, ctx)
        super().format_help(ctx, formatter)


app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Declarative, GitOps-style reconciler for libvirt hosts.")
_command = app.command


def _plain_command(*args, **kwargs):
    return _command(*args, cls=_Command, **kwargs)


app.command = _plain_command


def _version(value: bool) -> None:
    if value:
        from . import __version__
        typer.echo(f"virt-reconcile {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True,
                                       help="print the version and exit"),
          no_color: bool = typer.Option(False, "--no-color", help="no colours (as NO_COLOR=1; FORCE_COLOR=1 "
                                                                  "colours a pipe; TERM=dumb has none)")) -> None:
    """Declarative, GitOps-style reconciler for libvirt hosts."""
    if no_color:
        os.environ["NO_COLOR"] = "1"


EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
PathsArg = typer.Argument(..., metavar="PATH", help="manifest files or directories (*.yaml, *.yml, read recursively)")
HostOpt = typer.Option(None, "--host", metavar="NAME", help="only this Host")
SelectorOpt = typer.Option(None, "--selector", "-l", metavar="LABELS",
                           help="only Hosts whose labels match: key=value, key!=value, key, !key (commas: all of them)")
DeleteTpm = typer.Option(False, "--delete-tpm-state", help="with --prune: deleted guests' TPM state goes too "
                                                           "(kept by default)")
LockTimeout = typer.Option(300, "--lock-timeout", help="seconds to wait for a host lock held by another run")


def _err(text: str) -> None:
    typer.echo(text, err=True)


def _fail(exc: ReconcilerError) -> None:
    """Print the error and exit 1 (raises typer.Exit)."""
    if isinstance(exc, ManifestError):
        count = len(exc.diagnostics)
        _err(f"Error: {count} problem{'s' if count != 1 else ''} in the manifests:")
        for diag in exc.diagnostics:
            _err(f"  {diag}")
    else:
        _err(f"Error: {exc}")
    raise typer.Exit(EXIT_ERROR)


@app.command()
def validate(paths: list[Path] = PathsArg,
             json_out: bool = typer.Option(False, "--json", help="print the result as JSON on stdout")) -> None:
    """Check manifests offline: YAML, schema, references. Exit 0 valid, 1 invalid."""
    try:
        manifest = pipeline.load(paths)
    except ReconcilerError as exc:
        if json_out:
            report.validate_json(None, exc)
            raise typer.Exit(EXIT_ERROR)
        _fail(exc)
    if json_out:
        report.validate_json(manifest, None)
    else:
        typer.echo(f"Valid: {len(manifest.items)} objects on {len(manifest.hosts)} host(s).")


@app.command()
def plan(paths: list[Path] = PathsArg,
         json_out: bool = typer.Option(False, "--json", help="print the plan as JSON on stdout"),
         fmt: str = typer.Option("text", "--format", help="text, json or markdown (a pull-request comment)"),
         out: Optional[Path] = typer.Option(None, "--out", help="save the plan for apply --plan"),
         host: Optional[str] = HostOpt, selector: Optional[str] = SelectorOpt,
         prune: bool = typer.Option(False, "--prune", help="also delete owned objects that left the manifests"),
         allow_empty: bool = typer.Option(False, "--allow-empty", help="let --prune empty a host"),
         delete_tpm_state: bool = DeleteTpm,
         show_unmanaged: bool = typer.Option(False, "--show-unmanaged",
                                             help="also list, per object, the parts no manifest field manages")) -> None:
    """Show what apply would change. Exit 0 no changes, 2 changes pending, 1 error."""
    if fmt not in ("text", "json", "markdown"):
        _err("Error: --format is text, json or markdown")
        raise typer.Exit(EXIT_ERROR)
    try:
        the_plan = pipeline.plan(paths, pipeline.HostChoice(host, selector),
                                 PlanOptions(prune, allow_empty, show_unmanaged, delete_tpm_state))
        if out:
            the_plan.save(out)
    except ReconcilerError as exc:
        _fail(exc)
    fmt = "json" if json_out else fmt
    report.plan_as(the_plan, fmt)
    report.plan_problems(the_plan)
    _warn_dirty(the_plan)
    if out and fmt == "text":
        typer.echo(f"\nSaved the plan to {out}; run: virt-reconcile apply --plan {out}")
    if the_plan.problems:
        raise typer.Exit(EXIT_ERROR)
    raise typer.Exit(EXIT_OK if the_plan.empty else EXIT_CHANGES)


@app.command()
def apply(paths: Optional[list[Path]] = typer.Argument(None, metavar="PATH", help="manifest files or directories"),
          plan_file: Optional[Path] = typer.Option(None, "--plan", help="apply this saved plan, without asking"),
          auto_approve: bool = typer.Option(False, "--auto-approve", help="do not ask for 'yes'"),
          host: Optional[str] = HostOpt, selector: Optional[str] = SelectorOpt,
          prune: bool = typer.Option(False, "--prune", help="also delete owned objects that left the manifests"),
          allow_empty: bool = typer.Option(False, "--allow-empty", help="let --prune empty a host"),
          delete_tpm_state: bool = DeleteTpm,
          restart: bool = typer.Option(False, "--restart", help="restart guests whose changes need it"),
          allow_destroy: bool = typer.Option(False, "--allow-destroy", help="allow destructive actions"),
          allow_disruptive: bool = typer.Option(False, "--allow-disruptive",
                                                help="allow host bridge changes that move the connection to the "
                                                     "host (applied with a rollback)"),
          rollback_timeout: int = typer.Option(60, "--rollback-timeout", min=1, max=3600,
                                               help="seconds a host may take to answer after such a change before "
                                                    "it is rolled back"),
          shutdown_timeout: int = typer.Option(120, "--shutdown-timeout", help="seconds a guest gets to shut down"),
          force_stop: bool = typer.Option(False, "--force-stop", help="power off guests that do not shut down in time"),
          parallelism: int = typer.Option(10, "--parallelism", min=1, max=100,
                                          help="actions run at once on each host (independent ones only; hosts "
                                               "are applied at the same time)"),
          lock_timeout: int = LockTimeout,
          json_out: bool = typer.Option(False, "--json", help="stream JSON lines on stdout: the plan, each action's "
                                                              "start and end, the summary")) -> None:
    """Apply the manifests (or a saved plan) under a per-host lock. Exit 0 success, 1 any failure."""
    if bool(paths) == bool(plan_file):
        _err("Error: give manifest PATHs or --plan FILE (one of them)")
        raise typer.Exit(EXIT_ERROR)
    if json_out and not (auto_approve or plan_file):
        _err("Error: --json cannot ask for approval: add --auto-approve (or apply a saved --plan)")
        raise typer.Exit(EXIT_ERROR)
    options = Options(restart, allow_destroy, shutdown_timeout, force_stop, allow_disruptive, rollback_timeout,
                      parallelism)
    failed: dict[str, str] = {}
    try:
        if plan_file:
            saved = Plan.load(plan_file)
            hosts = {h: pipeline.Target(saved.hosts[h], saved.instances.get(h, "default"))
                     for h in saved.touched_hosts()}
            commit = saved.git.get("commit", "")
        else:
            manifest = pipeline.load(paths)
            hosts = pipeline.targets(manifest, pipeline.hosts_of(manifest, pipeline.HostChoice(host, selector)))
            commit = ""
        with pipeline.locked(hosts, "apply", lock_timeout, _err, commit, failed) as conns:
            if plan_file:
                the_plan = saved
                the_plan.actions = [a for a in the_plan.actions if a.host in conns]
                pipeline.check_saved(the_plan)
            else:
                the_plan = pipeline.plan(paths, pipeline.HostChoice(host, selector),
                                         PlanOptions(prune, allow_empty, delete_tpm_state=delete_tpm_state),
                                         hosts=set(conns), manifest=manifest)
            the_plan.problems = list(failed.values()) + the_plan.problems
            _apply(the_plan, conns, options, not (auto_approve or plan_file), json_out)
    except ReconcilerError as exc:
        _fail(exc)


def _approved() -> bool:
    """Ask for 'yes' on stdin; a closed stdin (CI, a pipe at its end) is an error saying what to do."""
    print("\nApply these changes? Only 'yes' is accepted: ", end="", flush=True)
    line = sys.stdin.readline() if sys.stdin is not None and not sys.stdin.closed else ""
    if not line:
        print(flush=True)
        _err("Error: no answer: stdin is closed, so nobody can approve the plan; nothing was changed. "
             "Use --auto-approve to apply without asking (or apply a saved plan with --plan).")
        raise typer.Exit(EXIT_ERROR)
    return line.strip() == "yes"


def _apply(the_plan: Plan, conns: dict, options: Options, confirm: bool, as_json: bool = False) -> None:
    if as_json:
        console.json_line({"type": "plan", **the_plan.to_json(with_ops=False)})
    else:
        report.plan_text(the_plan, sys.stdout)
    report.plan_problems(the_plan)
    _warn_dirty(the_plan)
    done = EXIT_ERROR if the_plan.problems else EXIT_OK
    if the_plan.empty:
        if as_json:
            console.json_line({"type": "summary", **report.results_counts([])})
        raise typer.Exit(done)
    if confirm and not _approved():
        typer.echo("Apply cancelled; nothing was changed.")
        raise typer.Exit(EXIT_ERROR)
    if not as_json:
        print("\nApplying:", flush=True)
    progress = console.progress_for(len(the_plan.actions), as_json)
    try:
        results = pipeline.execute(the_plan, conns, options, progress)
    finally:
        progress.close()
    if as_json:
        console.json_line({"type": "summary", **report.results_counts(results)})
        raise typer.Exit(EXIT_ERROR if the_plan.problems or any(r.status != "done" for r in results) else EXIT_OK)
    typer.echo("\n" + report.results_summary(results))
    if any(r.status != "done" for r in results):
        typer.echo("There is no automatic rollback: fix the cause and apply again to converge.")
        raise typer.Exit(EXIT_ERROR)
    if the_plan.problems:
        typer.echo("Some hosts or objects could not be planned (see the errors above); the rest was applied.")
        raise typer.Exit(EXIT_ERROR)


def _warn_dirty(the_plan: Plan) -> None:
    if the_plan.git.get("dirty"):
        _err(f"Warning: the manifests have uncommitted changes (on top of {the_plan.git.get('commit', '')[:12]}); "
             "the owner records say so")


def _drift_once(paths, host, json_file, metrics_file, repair, options, lock_timeout, as_json=False,
                show_unmanaged=False) -> int:
    from . import monitor
    try:
        result = monitor.run(paths, host, repair, options, lock_timeout, _err)
    except ReconcilerError as exc:
        _fail(exc)
    if as_json:
        json.dump(monitor.report_json(result), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        report.drift_text(result, sys.stdout, show_unmanaged)
    try:
        if json_file:
            monitor.write_json(result, json_file)
        if metrics_file:
            monitor.write_metrics(result, metrics_file)
    except ReconcilerError as exc:
        _fail(exc)
    return result.exit_code


@app.command()
def drift(paths: list[Path] = PathsArg, host: Optional[str] = HostOpt, selector: Optional[str] = SelectorOpt,
          json_out: bool = typer.Option(False, "--json", help="print the report as JSON on stdout"),
          json_file: Optional[Path] = typer.Option(None, "--report", help="also write the JSON report to this file "
                                                                         "(atomically)"),
          metrics_file: Optional[Path] = typer.Option(None, "--metrics", help="write Prometheus textfile metrics"),
          repair: bool = typer.Option(False, "--repair", help="apply corrective changes to drifted objects"),
          restart: bool = typer.Option(False, "--restart", help="with --repair: restart guests that need it"),
          force_stop: bool = typer.Option(False, "--force-stop", help="with --repair: power off guests that do not shut down"),
          lock_timeout: int = LockTimeout,
          show_unmanaged: bool = typer.Option(False, "--show-unmanaged",
                                              help="also list, per owned object, the parts no manifest field manages")) -> None:
    """Report what changed outside git (read-only unless --repair). Exit 0 in sync, 2 drift or
    pending changes, 1 error."""
    raise typer.Exit(_drift_once(paths, pipeline.HostChoice(host, selector), json_file, metrics_file, repair,
                                 Options(restart=restart, force_stop=force_stop), lock_timeout, json_out,
                                 show_unmanaged))


@app.command()
def watch(paths: list[Path] = PathsArg, host: Optional[str] = HostOpt, selector: Optional[str] = SelectorOpt,
          interval: float = typer.Option(300, "--interval", help="seconds between drift runs"),
          json_file: Optional[Path] = typer.Option(None, "--report", help="write the JSON report to this file"),
          metrics_file: Optional[Path] = typer.Option(None, "--metrics", help="write Prometheus textfile metrics"),
          repair: bool = typer.Option(False, "--repair", help="apply corrective changes to drifted objects"),
          iterations: int = typer.Option(0, "--iterations", help="stop after this many runs (0: never)"),
          lock_timeout: int = LockTimeout) -> None:
    """Run drift every --interval seconds, for hosts without systemd timers. Exit code of the last run."""
    code, run = 0, 0
    while iterations == 0 or run < iterations:
        started = time.monotonic()
        code = _drift_once(paths, pipeline.HostChoice(host, selector), json_file, metrics_file, repair, Options(), lock_timeout)
        run += 1
        if iterations and run >= iterations:
            break
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
    raise typer.Exit(code)


@app.command()
def status(paths: list[Path] = PathsArg, host: Optional[str] = HostOpt, selector: Optional[str] = SelectorOpt,
           json_out: bool = typer.Option(False, "--json", help="print as JSON"),
           show_unmanaged: bool = typer.Option(False, "--show-unmanaged",
                                               help="list, per managed object, the parts no manifest field manages")) -> None:
    """List per host: managed objects with the commit they were applied from, missing and unmanaged ones."""
    from . import manage
    try:
        hosts, errors = manage.status(paths, pipeline.HostChoice(host, selector), show_unmanaged)
    except ReconcilerError as exc:
        _fail(exc)
    report.status(hosts, json_out, sys.stdout, errors)
    raise typer.Exit(EXIT_ERROR if errors else EXIT_OK)


@app.command()
def adopt(kind_name: str = typer.Argument(..., metavar="KIND/NAME", help="e.g. Guest/web-1, Volume/pool/disk.qcow2"),
          paths: list[Path] = PathsArg, host: Optional[str] = HostOpt,
          out: Optional[Path] = typer.Option(None, "--out", help="manifest file to write (default: in PATH)"),
          lock_timeout: int = LockTimeout) -> None:
    """Take an unmanaged object under management: write its manifest from its live definition and
    mark it owned. The next plan shows no changes for it."""
    from . import manage
    try:
        written, unmanaged = manage.adopt(paths, kind_name, host, out, lock_timeout, _err)
    except ReconcilerError as exc:
        _fail(exc)
    typer.echo(f"Adopted {kind_name}: wrote {written}. Commit it; 'virt-reconcile plan' shows no change for it.")
    if unmanaged:
        typer.echo("Not managed by any field, kept exactly as they are on the host: " + ", ".join(unmanaged))


@app.command()
def forget(kind_name: str = typer.Argument(..., metavar="KIND/NAME"), paths: list[Path] = PathsArg,
           host: Optional[str] = HostOpt, lock_timeout: int = LockTimeout) -> None:
    """Stop managing an object (it stays on the host, unmanaged). Remove it from the manifests too."""
    from . import manage
    try:
        manage.forget(paths, kind_name, host, lock_timeout, _err)
    except ReconcilerError as exc:
        _fail(exc)
    typer.echo(f"Forgot {kind_name}: it stays on the host and is no longer managed.")


@app.command()
def unlock(lock_id: str = typer.Argument(..., metavar="ID"), paths: list[Path] = PathsArg,
           host: Optional[str] = HostOpt) -> None:
    """Break a host lock left by a killed run; only the lock with this ID is removed."""
    from . import manage
    try:
        manage.unlock(paths, lock_id, host)
    except ReconcilerError as exc:
        _fail(exc)
    typer.echo(f"Removed lock {lock_id}.")


@app.command()
def show(plan_file: Path = typer.Argument(..., metavar="PLANFILE", help="a plan saved by plan --out"),
         fmt: str = typer.Option("text", "--format", help="text, json or markdown")) -> None:
    """Print a saved plan as text, JSON or Markdown (read-only; nothing is contacted)."""
    if fmt not in ("text", "json", "markdown"):
        _err("Error: --format is text, json or markdown")
        raise typer.Exit(EXIT_ERROR)
    try:
        saved = Plan.load(plan_file)
    except ReconcilerError as exc:
        _fail(exc)
    report.plan_as(saved, fmt)
    if fmt == "text":
        typer.echo(f"\nSaved {saved.created_at} by virt-reconcile {saved.tool_version}; "
                   f"apply it with: virt-reconcile apply --plan {plan_file}")
    raise typer.Exit(EXIT_OK)


@app.command()
def schema(out: Optional[Path] = typer.Option(None, "--out", help="write to this file instead of stdout"),
           reference: bool = typer.Option(False, "--reference", help="print the field reference (Markdown): "
                                          "each field's libvirt XML, reset and live behaviour")) -> None:
    """Print the JSON Schema of the manifest documents (or the field reference)."""
    from .reference import markdown
    from .schema import schema_text
    text = markdown() if reference else schema_text()
    if out:
        out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def main() -> None:
    """The command's entry point: no command ends in a traceback. An error the tool did not
    foresee is printed in one line (VIRT_RECONCILE_DEBUG=1 shows the traceback) and exits 1."""
    try:
        app(prog_name="virt-reconcile")
    except KeyboardInterrupt:
        _err("Interrupted.")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001  (the last safety net)
        if os.environ.get("VIRT_RECONCILE_DEBUG"):
            raise
        _err(f"Error: internal error, please report it: {type(exc).__name__}: {exc} "
             "(VIRT_RECONCILE_DEBUG=1 shows where)")
        sys.exit(EXIT_ERROR)
    finally:
        # the run's objects need no collection at exit: without this, the interpreter's last
        # collections walk them all (40 ms of a small plan's 350); exit still flushes and closes
        gc.freeze()
