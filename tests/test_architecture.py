"""The import rules: layers run downhill (import-linter), no cycles, every module imports on its own,
the data commands never load torch, and project imports sit at module level (what the deps rely on)."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

import seqpipe
from seqpipe import pipelines
from tests.conftest import BIN, REPO, run_env, tiny_overrides, write_params

MODULES = sorted(m.name for m in pkgutil.walk_packages(seqpipe.__path__, "seqpipe.")) + ["seqpipe"]


def test_layer_contracts_hold() -> None:
    proc = subprocess.run([str(BIN / "lint-imports")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_no_import_cycles() -> None:
    graph = grimp.build_graph("seqpipe")
    cycles = []
    state: dict[str, int] = {}   # 1 = on the current path, 2 = done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for nxt in sorted(graph.find_modules_directly_imported_by(module)):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt] if nxt in path else [module, nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[module] = 2

    for module in sorted(graph.modules):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True,
                          env=run_env(REPO), timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


LOADED = ("import json, sys\nfrom seqpipe.cli import main\ntry:\n    code = main(sys.argv[1:])\n"
          "except SystemExit as exc:\n    code = exc.code\n"
          "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'seqpipe'))))\n"
          "sys.exit(code)\n")


def loaded_modules(args: list[str], cwd: Path) -> list[str]:
    """Run the CLI with `args` in a fresh interpreter; the torch and seqpipe modules it loaded."""
    proc = subprocess.run([sys.executable, "-c", LOADED, *args], cwd=cwd, capture_output=True, text=True,
                          env=run_env(REPO), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_list_help_download_and_preprocess_never_load_torch(tmp_path: Path) -> None:
    write_params(tmp_path / "params.yaml", tiny_overrides())
    commands = [["list"], ["--help"], ["train", "--help"], ["dvc-yaml", "--help"]]
    commands += [[stage, model] for model in pipelines.names() for stage in ("download", "preprocess")]
    for args in commands:
        modules = loaded_modules(args, tmp_path)
        assert "torch" not in modules, f"`seqpipe {' '.join(args)}` imported torch"


def test_project_imports_sit_at_module_level() -> None:
    """The stage deps are the module-level import closure; an import inside a function would be missed.
    cli.py and stages/entry.py alone import on demand: one stage per command (so `list` and the data stages
    skip torch; dvc_stages.ENTRIES names each stage's module), and seqpipe.io (numpy) only once
    entry.configure_numerics has set the kernels; each stage module imports seqpipe.io itself."""
    misplaced = []
    for path in sorted((REPO / "src/seqpipe").rglob("*.py")):
        if path.name == "cli.py" or path.relative_to(REPO).as_posix() == "src/seqpipe/stages/entry.py":
            continue
        for func in ast.walk(ast.parse(path.read_text())):
            if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(func):
                    names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                             else ["seqpipe" if node.level else node.module or ""] if isinstance(node, ast.ImportFrom)
                             else [])   # a relative import is a project import too
                    misplaced += [f"{path.relative_to(REPO)}:{node.lineno} {n}" for n in names
                                  if n.split(".")[0] == "seqpipe"]
    assert not misplaced, misplaced
