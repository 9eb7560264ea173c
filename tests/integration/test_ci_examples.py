"""The CI examples run as their CI would run them, on the real daemon: every shell step of the
GitHub workflow and every script line of the GitLab pipeline (install, validate, plan, comment,
apply, drift), the GitHub comment script under node with a stand-in for the GitHub API, and
GitLab's note step against a stand-in notes API: a second pipeline updates the one note."""
from __future__ import annotations

import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from ruamel.yaml import YAML

from tests.helpers import REPO
from tests.integration.test_core_loop import BASE

pytestmark = pytest.mark.libvirtd

GITHUB = REPO / "examples" / "ci" / "github" / "virt-reconcile.yml"
GITLAB = REPO / "examples" / "ci" / "gitlab" / ".gitlab-ci.yml"
MARKER = "<!-- virt-reconcile-plan -->"


def _workspace(env, tmp_path: Path) -> Path:
    """A checkout of a manifests repository: manifests/ holds the test's objects."""
    work = tmp_path / "checkout"
    (work / "manifests").mkdir(parents=True)
    env.dir = work / "manifests"
    env.write(BASE.replace("state: running", "state: shutoff"))
    return work


def _base_env(wheel: Path, **extra) -> dict:
    out = dict(os.environ, VIRT_RECONCILE=str(wheel), **extra)
    out["no_proxy"] = out["NO_PROXY"] = "127.0.0.1,localhost"
    for var in ("VIRTUAL_ENV", "PYTHONPATH"):
        out.pop(var, None)
    # a Debian runner: the distribution's python3 (which sees python3-libvirt) first, not this
    # machine's /usr/local build nor the development venv
    rest = [p for p in out["PATH"].split(":") if ".venv" not in p and p not in ("/usr/bin", "/bin")]
    out["PATH"] = ":".join(["/usr/bin", "/bin", *rest])
    return out


def _bash(script: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


_GITHUB_SCRIPT = """
const comments = []; let next = 1;
const github = {
  paginate: async (fn, args) => (await fn(args)).data,
  rest: {issues: {
    listComments: async () => ({data: comments.map(c => ({...c}))}),
    updateComment: async ({comment_id, body}) => { comments.find(c => c.id === comment_id).body = body; },
    createComment: async ({body}) => { comments.push({id: next++, body}); },
  }},
};
const context = {repo: {owner: 'o', repo: 'r'}, issue: {number: 1}};
(async () => {
  comments.push({id: next++, body: 'a reviewer wrote this'});
  for (let run = 0; run < 2; run++) { await (async () => { SCRIPT })(); }
  console.log(JSON.stringify(comments));
})().catch(e => { console.error(e); process.exit(1); });
"""


def test_github_workflow_steps_run(env, wheel, tmp_path):
    work = _workspace(env, tmp_path)
    flow = YAML(typ="safe").load(GITHUB.read_text())
    runner = tmp_path / "runner"
    runner.mkdir()
    path_file, output_file = runner / "path", runner / "output"
    for job in ("plan", "apply", "drift"):
        for step in flow["jobs"][job]["steps"]:
            added = [line for line in path_file.read_text().splitlines()] if path_file.exists() else []
            run_env = _base_env(wheel, RUNNER_TEMP=str(runner), GITHUB_PATH=str(path_file),
                                GITHUB_OUTPUT=str(output_file))
            run_env["PATH"] = ":".join(added + [run_env["PATH"]])
            if "run" in step:
                done = _bash(step["run"], work, run_env)
                assert done.returncode == 0, (job, step.get("name"), done.stdout, done.stderr)
            elif step["uses"].startswith("actions/github-script"):
                harness = tmp_path / "comment.js"
                harness.write_text(_GITHUB_SCRIPT.replace("SCRIPT", step["with"]["script"]))
                done = subprocess.run(["node", str(harness)], cwd=work, capture_output=True, text=True, timeout=60)
                assert done.returncode == 0, done.stderr
                comments = json.loads(done.stdout)
                ours = [c for c in comments if c["body"].startswith(MARKER)]
                assert len(comments) == 2 and len(ours) == 1, comments      # updated, not added again
                assert env.name("vm") in ours[0]["body"]
        if job == "plan":
            assert "exitcode=2" in output_file.read_text()
            assert env.name("vm") in (work / "plan.md").read_text()
    assert env.lookup("vm").isPersistent()                  # apply made it
    assert (work / "drift.json").exists()                   # drift ran, and exited 0 (no drift)


class _Notes(BaseHTTPRequestHandler):
    """GitLab's MR notes API, as far as the pipeline uses it."""

    notes: list = []

    def log_message(self, *args):
        pass

    def _reply(self, code: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> str:
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        return parse_qs(raw, keep_blank_values=True)["body"][0]

    def do_GET(self):
        self._reply(200, self.notes)

    def do_POST(self):
        if self.headers.get("PRIVATE-TOKEN") != "token":
            return self._reply(401, {})
        self.notes.append({"id": len(self.notes) + 1, "body": self._body()})
        self._reply(201, self.notes[-1])

    def do_PUT(self):
        note_id = int(urlparse(self.path).path.rsplit("/", 1)[1])
        note = next(n for n in self.notes if n["id"] == note_id)
        note["body"] = self._body()
        self._reply(200, note)


def test_gitlab_pipeline_scripts_run(env, wheel, tmp_path):
    work = _workspace(env, tmp_path)
    pipeline = YAML(typ="safe").load(GITLAB.read_text())
    _Notes.notes = [{"id": 1, "body": "a reviewer wrote this"}]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Notes)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        run_env = _base_env(wheel, CI_PROJECT_DIR=str(work), CI_PROJECT_ID="1", CI_MERGE_REQUEST_IID="7",
                            CI_API_V4_URL=f"http://127.0.0.1:{server.server_port}/api/v4",
                            GITLAB_API_TOKEN="token", **{k: str(v) for k, v in pipeline["variables"].items()
                                                        if k != "VIRT_RECONCILE"})
        for job in ("plan", "plan", "apply", "drift"):          # two merge-request pipelines
            spec = pipeline[job]
            script = "\n".join(spec.get("before_script", []) + spec["script"])
            done = _bash(script, work, run_env)
            assert done.returncode == 0, (job, done.stdout, done.stderr)
            if job == "plan":
                ours = [n for n in _Notes.notes if n["body"].startswith(MARKER)]
                assert len(_Notes.notes) == 2 and len(ours) == 1, _Notes.notes
                assert env.name("vm") in ours[0]["body"]
    finally:
        server.shutdown()
    assert env.lookup("vm").isPersistent()
    assert (work / "drift.json").exists() and (work / "drift.prom").exists()
