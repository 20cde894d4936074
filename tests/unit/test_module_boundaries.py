"""The import rules of docs/architecture.md, read from the source (ast), not from a running import:

- no module under twilight_ops/phases/ imports twilight_ops.render (a phase returns typed results;
  tasks/ shows them: `inv cutover` passes a view in);
- a phase does not import another phase's private (underscore) names, by `from .x import _y` or `x._y`;
- no module under twilight_ops/render/ imports twilight_ops.phases at run time (type hints under
  `if TYPE_CHECKING:` only): render depends on results and the runbook's vocabulary, never on a phase.
Imports inside functions count as much as those at the top.
"""
from __future__ import annotations

import ast
from pathlib import Path

import twilight_ops

PACKAGE = Path(twilight_ops.__file__).resolve().parent


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _base(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = importer.split(".")
    parts = parts if is_package else parts[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def _type_checking_only(tree: ast.AST) -> set[ast.AST]:
    """The import nodes inside `if TYPE_CHECKING:` blocks."""
    inside: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, (ast.Name, ast.Attribute)) and \
                (getattr(node.test, "id", None) or getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            for stmt in node.body:
                inside.update(ast.walk(stmt))
    return inside


def imports(path: Path, root: Path) -> list[tuple[int, str, str, str, bool]]:
    """(line, module, name or '', bound as, type-checking only) for every import in a file; `name`
    is what `from module import name` takes ('' for a plain `import module`)."""
    importer = module_name(path, root)
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    typing_only = _type_checking_only(tree)
    out: list[tuple[int, str, str, str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, "", a.asname or a.name, node in typing_only) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _base(importer, path.name == "__init__.py", node)
            out += [(node.lineno, base, a.name, a.asname or a.name, node in typing_only) for a in node.names]
    return out


def _within(module: str, name: str, package: str) -> bool:
    """`from module import name` reaches `package` (the module itself, or a submodule taken by name)."""
    full = f"{module}.{name}" if name else module
    return any(m == package or m.startswith(package + ".") for m in (module, full))


def _phase_module(module: str, name: str) -> str | None:
    """The phase module a `from module import name` reaches, if any (twilight_ops.phases.X)."""
    prefix = "twilight_ops.phases."
    if module.startswith(prefix):
        return ".".join(module.split(".")[:3])
    if module == "twilight_ops.phases" and name:
        return f"{prefix}{name}"
    return None


def violations(root: Path = PACKAGE) -> list[str]:
    found: list[str] = []
    for path in sorted((root / "phases").glob("*.py")):
        me = module_name(path, root)
        rel = path.relative_to(root.parent)
        phase_aliases: dict[str, str] = {}
        for line, module, name, bound, _ in imports(path, root):
            if _within(module, name, "twilight_ops.render"):
                found.append(f"{rel}:{line}: a phase imports render ({module}{'.' + name if name else ''})")
            other = _phase_module(module, name)
            if other is None or other == me:
                continue
            if module == other and name.startswith("_"):
                found.append(f"{rel}:{line}: imports {other}'s private {name}")
            if module == "twilight_ops.phases" or (not name and module == other):
                phase_aliases[bound] = other
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and isinstance(node.value, ast.Name) and node.value.id in phase_aliases):
                found.append(f"{rel}:{node.lineno}: uses {phase_aliases[node.value.id]}'s private {node.attr}")
    for path in sorted((root / "render").glob("*.py")):
        rel = path.relative_to(root.parent)
        for line, module, name, _, typing_only in imports(path, root):
            if _within(module, name, "twilight_ops.phases") and not typing_only:
                found.append(f"{rel}:{line}: render imports a phase ({module}{'.' + name if name else ''})")
    return found


def test_phases_do_not_import_render_nor_each_other_s_internals_and_render_imports_no_phase():
    assert violations() == []


def test_the_check_sees_each_kind_of_import(tmp_path):
    """The rules above on a made-up package: every form is caught, type hints in render are not."""
    root = tmp_path / "twilight_ops"
    for sub in ("phases", "render"):
        (root / sub).mkdir(parents=True)
        (root / sub / "__init__.py").write_text("")
    (root / "phases" / "deploy.py").write_text("def _fail():\n    pass\n")
    (root / "phases" / "a.py").write_text(
        "from ..render import report\n"
        "def f():\n    from ..render.smoke import render\n    import twilight_ops.render.decide\n")
    (root / "phases" / "b.py").write_text(
        "from .deploy import _fail, ok\nfrom . import deploy\nfrom twilight_ops.phases import deploy as d\n"
        "deploy._fail()\nd._fail()\ndeploy.__name__\n")
    (root / "render" / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..phases.deploy import Report\n"
        "def g():\n    from ..phases import deploy\n")
    (root / "phases" / "clean.py").write_text("from . import deploy\nfrom ..results import Status\nfrom .deploy import ok\n")
    assert violations(root) == [
        "twilight_ops/phases/a.py:1: a phase imports render (twilight_ops.render.report)",
        "twilight_ops/phases/a.py:3: a phase imports render (twilight_ops.render.smoke.render)",
        "twilight_ops/phases/a.py:4: a phase imports render (twilight_ops.render.decide)",
        "twilight_ops/phases/b.py:1: imports twilight_ops.phases.deploy's private _fail",
        "twilight_ops/phases/b.py:4: uses twilight_ops.phases.deploy's private _fail",
        "twilight_ops/phases/b.py:5: uses twilight_ops.phases.deploy's private _fail",
        "twilight_ops/render/c.py:5: render imports a phase (twilight_ops.phases.deploy)",
    ]
