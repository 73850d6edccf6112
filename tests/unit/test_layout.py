"""Guards of the package's layout (issue #14), read from the source with ``ast``: module
sizes, no import cycles, the server never reaching into the provisioner, and the states
written once in ``sshpyk/states.py``."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from sshpyk.states import CheckStatus, MountState, TunnelState

PKG = Path(__file__).resolve().parents[2] / "sshpyk"
MAX_LINES = 500
LONG_ALLOWED = {"sftp_server.py": "one self-contained program run as its own process"}
MAX_ADAPTER_LINES = 300  # the jupyter_client adapter only


def modules() -> dict[str, Path]:
    """Dotted name -> file of every product module (the built labextension holds none)."""
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        rel = p.relative_to(PKG.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out[".".join(parts)] = p
    return out


def lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def test_the_package_is_where_the_guards_look():
    mods = modules()
    assert {"sshpyk", "sshpyk.model", "sshpyk.states", "sshpyk.sftp_server"} <= set(mods)


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_product_module_over_500_lines(name):
    path = modules()[name]
    if path.name in LONG_ALLOWED and path.parent == PKG:
        return
    assert lines(path) <= MAX_LINES, f"{path.relative_to(PKG.parent)}: {lines(path)} lines"


def test_the_provisioner_is_the_adapter_only():
    path = PKG / "kernel" / "provisioner.py"
    assert path.is_file(), "sshpyk/kernel/provisioner.py is where SSHKernelProvisioner lives"
    assert lines(path) <= MAX_ADAPTER_LINES, f"{lines(path)} lines"


# ---- the import graph -------------------------------------------------------------------------


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of import nodes under ``if TYPE_CHECKING:`` (never run)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", "")
            if name == "TYPE_CHECKING":
                skip |= {id(n) for b in node.body for n in ast.walk(b)}
    return skip


def imports_of(name: str, path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """(imported sshpyk module, line) for every import in the file, at module level or
    inside a function alike: ``from .pkg import name`` counts as ``pkg.name`` when that is
    a module, else as ``pkg``."""
    tree = ast.parse(path.read_text())
    skip = _type_checking_only(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "sshpyk" or alias.name.startswith("sshpyk."):
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not (target == "sshpyk" or target.startswith("sshpyk.")):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield (sub if sub in known else target), node.lineno


def import_graph() -> dict[str, dict[str, int]]:
    mods = modules()
    graph: dict[str, dict[str, int]] = {}
    for name, path in mods.items():
        edges: dict[str, int] = {}
        for target, line in imports_of(name, path, set(mods)):
            # every module runs the package's __init__ first whatever it names, so naming it
            # (for __version__) adds nothing; what the root __init__ imports is checked
            if target not in (name, "sshpyk"):
                edges.setdefault(target, line)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_reader_sees_relative_absolute_and_function_level_imports(tmp_path):
    src = tmp_path / "mod.py"
    src.write_text(
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "import sshpyk.states\n"
        "from . import registry, SOMETHING\n"
        "from ..remote import protocol\n"
        "if TYPE_CHECKING:\n"
        "    from sshpyk.runtime import Runtime\n"
        "def f():\n"
        "    from .localfs import private_dir\n"
    )
    known = {"sshpyk", "sshpyk.states", "sshpyk.kernel", "sshpyk.kernel.registry",
             "sshpyk.remote", "sshpyk.remote.protocol", "sshpyk.kernel.localfs"}  # fmt: skip
    got = sorted(t for t, _ in imports_of("sshpyk.kernel.mod", src, known))
    assert got == [
        "sshpyk.kernel",  # SOMETHING is no module: the package itself
        "sshpyk.kernel.localfs",
        "sshpyk.kernel.registry",
        "sshpyk.remote.protocol",
        "sshpyk.states",
    ]
    assert cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b": 1}, "b": {}}) == []


def test_no_import_cycles_among_sshpyk_modules():
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles: " + "; ".join(
        f"[{', '.join(c)}] edges: {_edges(graph, c)}" for c in found
    )


def _edges(graph: dict[str, dict[str, int]], comp: list[str]) -> str:
    return ", ".join(
        f"{a} -> {b} (line {line})" for a in comp for b, line in graph[a].items() if b in comp
    )


def test_the_server_never_imports_the_provisioner_or_the_kernel_package():
    graph = import_graph()
    bad = [
        f"{m} -> {t} (line {line})"
        for m, edges in graph.items()
        if m == "sshpyk.server" or m.startswith("sshpyk.server.")
        for t, line in edges.items()
        if t in ("sshpyk.provisioner", "sshpyk.kernel") or t.startswith("sshpyk.kernel.")
    ]
    assert not bad, bad


# ---- states written once -----------------------------------------------------------------------

STATE_WORDS = {m.value for enum in (TunnelState, MountState, CheckStatus) for m in enum}
STATE_NAMES = ("state", "status")


def _word(node) -> bool:
    return isinstance(node, ast.Constant) and node.value in STATE_WORDS


def _statey(name: str) -> bool:
    return any(s in name.lower() for s in STATE_NAMES)


def _target_name(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return str(node.slice.value)
    if isinstance(node, ast.Call):
        return _target_name(node.func)
    return ""


def hand_written_states(source: str) -> Iterator[tuple[int, str, str]]:
    """(line, word, how) for every state word used *as a state* in code: compared, listed
    with another, assigned or passed to something named state/status, put under a "state"
    key, or returned.  The same word as a dict key, a log message, a protocol message name or
    in a docstring or comment is no state and is not flagged."""
    for n in ast.walk(ast.parse(source)):
        if isinstance(n, ast.Compare):
            for side in [n.left, *n.comparators]:
                elts = side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
                yield from ((e.lineno, e.value, "compared") for e in elts if _word(e))
        elif isinstance(n, (ast.Tuple, ast.List, ast.Set)):
            words = [e for e in n.elts if _word(e)]
            if len(words) > 1:
                yield n.lineno, ",".join(w.value for w in words), "listed"
        elif isinstance(n, (ast.Assign, ast.AnnAssign)) and n.value is not None:
            targets = n.targets if isinstance(n, ast.Assign) else [n.target]
            for t in targets:
                pairs = [(t, n.value)]
                if isinstance(t, ast.Tuple) and isinstance(n.value, ast.Tuple):
                    pairs = list(zip(t.elts, n.value.elts, strict=False))
                for target, value in pairs:
                    if _word(value) and _statey(_target_name(target)):
                        yield value.lineno, value.value, "assigned"
        elif isinstance(n, ast.Call) and _statey(_target_name(n.func)):
            yield from ((a.lineno, a.value, "passed") for a in n.args if _word(a))
        elif isinstance(n, ast.keyword) and n.arg and _statey(n.arg) and _word(n.value):
            yield n.value.lineno, n.value.value, "passed"
        elif isinstance(n, ast.Dict):
            for k, v in zip(n.keys, n.values, strict=True):
                if isinstance(k, ast.Constant) and _statey(str(k.value)) and _word(v):
                    yield v.lineno, v.value, "under a state key"
        elif isinstance(n, ast.Return) and _word(n.value):
            yield n.lineno, n.value.value, "returned"


def test_the_state_scanner_flags_states_and_nothing_else():
    flagged = [
        'if prov.state == "reconnecting": pass',
        'x = prov.state in ("connected", "lost")',
        'WATCH = ["mounting", "remounting"]',
        'self.state = "dead"',
        'self.state, self.step = "launching", ""',
        'self._set_state("lost", "no answer")',
        'Check(name, status="warn")',
        'reply = {"state": "mounted"}',
        'def f():\n    return "connected"',
    ]
    for src in flagged:
        assert list(hand_written_states(src)), src
    clean = [
        '"""The kernel is reconnecting or lost (a docstring)."""',
        "# connected, reconnecting, lost: a comment",
        'log.debug("failed", exc_info=True)',
        'ok = reply["ok"]',
        'MOUNTED = "mounted"  # the remote mount program says so',
        "self.state = TunnelState.LOST",
        "if prov.state == TunnelState.RECONNECTING: pass",
        'msg = f"state {state}: reconnecting"',
    ]
    for src in clean:
        assert not list(hand_written_states(src)), src


def test_states_are_written_once_in_states_py():
    found = [
        f"{path.relative_to(PKG.parent)}:{line} {word!r} {how}"
        for name, path in modules().items()
        if name != "sshpyk.states"
        for line, word, how in hand_written_states(path.read_text())
    ]
    assert not found, "use sshpyk.states: " + "; ".join(found)


# ---- the test tiers themselves ---------------------------------------------------------------

TESTS = PKG.parent / "tests"


def test_the_tier_markers_are_declared_and_strict():
    import tomllib

    conf = tomllib.loads((PKG.parent / "pyproject.toml").read_text())
    ini = conf["tool"]["pytest"]["ini_options"]
    declared = {m.split(":")[0] for m in ini["markers"]}
    assert {"unit", "integration", "resilience", "netns", "slow"} <= declared
    assert "--strict-markers" in ini["addopts"]


def test_tests_are_marked_by_the_directory_they_live_in():
    import importlib.util

    spec = importlib.util.spec_from_file_location("tests_root_conftest", TESTS / "conftest.py")
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    tier_of = conftest.tier_of
    assert tier_of(TESTS / "unit" / "test_model.py") == "unit"
    assert tier_of(TESTS / "integration" / "test_rest.py") == "integration"
    assert tier_of(TESTS / "resilience" / "test_resilience.py") == "resilience"
    assert conftest.TIERS["resilience"] == ("resilience", "slow")


def test_every_test_module_lives_in_a_tier_directory():
    loose = sorted(p.name for p in TESTS.glob("test_*.py"))
    assert loose == [], f"test modules outside tests/unit|integration|resilience: {loose}"
    tiers = {p.parent.name for p in TESTS.glob("*/test_*.py")} - {"harness"}
    assert tiers == {"unit", "integration", "resilience"}


# ---- test modules never import each other ------------------------------------------------------

TIER_DIRS = ("unit", "integration", "resilience")


def imported_test_modules(source: str) -> Iterator[tuple[int, str]]:
    """(line, name) for every import of a ``test_*`` module in the source, at module level or
    inside a function: ``import test_x``, ``from test_x import y``, ``from . import test_x``,
    ``from tests.integration.test_x import y`` and the like."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            mods = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            mods = [base]
            # ``from . import test_x`` / ``from tests.unit import test_x`` name a module
            if not base or base.rpartition(".")[2] in ("tests", *TIER_DIRS):
                mods += [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for mod in mods:
            if any(part.startswith("test_") for part in mod.split(".")):
                yield node.lineno, mod.lstrip(".")


def test_the_test_import_scanner_sees_every_form():
    flagged = [
        "import test_cli",
        "from test_rest import call",
        "def f():\n    from test_sshfs import local_servers",
        "from . import test_sshfs",
        "from .test_cli import BIN",
        "from tests.integration.test_cli import env",
        "import integration.test_rest as r",
    ]
    for src in flagged:
        assert list(imported_test_modules(src)), src
    clean = [
        "from helpers import BIN, call",
        "from helpers import test_hosts_ready",  # a name, not a module
        "import tests.helpers",
        "from harness import TestHosts",
        "import pytest_jupyter",
    ]
    for src in clean:
        assert not list(imported_test_modules(src)), src


def test_no_test_module_imports_another():
    """What test modules share lives in ``tests/helpers.py`` (functions, constants) or
    ``tests/conftest.py`` (fixtures), never in another test module."""
    files = sorted(p for tier in TIER_DIRS for p in (TESTS / tier).rglob("*.py"))
    assert len(files) > 20, files
    found = [
        f"{path.relative_to(TESTS)}:{line} imports {mod}"
        for path in files
        for line, mod in imported_test_modules(path.read_text())
    ]
    assert not found, "move what is shared to helpers.py or conftest.py: " + "; ".join(found)
