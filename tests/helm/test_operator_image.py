"""The operator image (operator/Dockerfile) cannot be built here (no Docker engine): it is linted (with the
runtime images, in tests/runtime/test_dockerfiles.py), checked against the chart, and its `operator` extra is
checked against what `tandem operator` imports."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from helm_support import REPO, render
from packaging.requirements import Requirement

DOCKERFILE = REPO / "operator" / "Dockerfile"


def test_the_image_is_slim_torch_free_non_root_and_runs_tandem_operator() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, flags=re.MULTILINE)
    instructions = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert '"/opt/tandem[operator]"' in text and not any("torch" in line for line in instructions)
    user = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)[-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and uid != "0"
    pod = render().one("Deployment")["spec"]["template"]["spec"]
    # The chart runs the image as the user it was built for.
    assert (str(pod["securityContext"]["runAsUser"]), str(pod["securityContext"]["runAsGroup"])) == (uid, gid)
    assert json.loads(re.search(r"^ENTRYPOINT (.+)$", text, flags=re.MULTILINE)[1]) == ["tandem", "operator"]


def test_the_build_context_keeps_the_sources_and_drops_the_rest() -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    copied = {m.split()[0] for m in re.findall(r"^COPY (.+)$", DOCKERFILE.read_text(), flags=re.MULTILINE)}
    assert not copied & ignored
    assert {".git", ".venv", "tests"} <= ignored


def _closure(requirements: list[str]) -> set[str]:
    """Distribution names installed by pip for these requirements (markers evaluated, no extras)."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = req.name.lower().replace("_", "-")
        if name in seen or (req.marker and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        todo += [Requirement(r) for r in importlib.metadata.requires(req.name) or []]
    return seen


def _imports(path: Path, nested: bool) -> set[str]:
    """Top-level names a module imports: every import statement, or (nested False) the module-level ones."""
    tree = ast.parse(path.read_text())
    nodes = ast.walk(tree) if nested else iter(tree.body)
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_operator_extra_installs_everything_tandem_operator_imports() -> None:
    """Every third-party module imported by the Tandem modules that `tandem operator` loads comes from a
    distribution `pip install .[operator]` installs (the libraries' own optional imports are theirs)."""
    code = ("import sys, tandem.cli, tandem.operator.main; "
            "print('\\n'.join(f'{n} {m.__file__}' for n, m in sorted(sys.modules.items()) if n.startswith('tandem')))")
    out = subprocess.run([sys.executable, "-P", "-c", code], check=True, capture_output=True, text=True, timeout=60)
    loaded = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    # The two torch-free runtime modules whose rules the operator shares: the fault table and the checkpoint
    # layout (the event rank 0 logs when it commits one).
    shared = {"tandem.runtime.faults", "tandem.runtime.ckpt_layout"}
    assert "tandem.operator.main" in loaded and not any(n.startswith("tandem.runtime.") and n not in shared
                                                        for n in loaded)
    # The command line imports each sub-command's package lazily: only its module level counts.
    imported = set().union(*(_imports(Path(path), nested=name != "tandem.cli") for name, path in loaded.items()))
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    installed = _closure(project["dependencies"] + project["optional-dependencies"]["operator"])
    providers = importlib.metadata.packages_distributions()
    missing = {module: dists for module in imported if (dists := providers.get(module))
               and not {d.lower().replace("_", "-") for d in dists} & (installed | {"tandem-train"})}
    assert "torch" not in imported
    assert not missing, f"imported by `tandem operator` but not installed by .[operator]: {missing}"
