"""The package's import graph: one way, no circle, and no import hidden inside a function to dodge one."""
import ast
from pathlib import Path

import primitives as P

PACKAGE = Path(P.__file__).parent


def imports_of(path: Path) -> tuple[set[str], list[str]]:
    """Modules of ``primitives`` that ``path`` imports anywhere, and where it imports anything inside a body."""
    tree = ast.parse(path.read_text())
    top = {node.module.split(".")[1] for node in ast.walk(tree)
           if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("primitives.")}
    nested = [f"{path.name}:{node.lineno}" for outer in tree.body if not isinstance(outer, (ast.Import, ast.ImportFrom))
              for node in ast.walk(outer) if isinstance(node, (ast.Import, ast.ImportFrom))]
    return top, nested


def test_no_module_imports_inside_a_function():
    hidden = [where for path in sorted(PACKAGE.glob("*.py")) for where in imports_of(path)[1]]
    assert hidden == []


def test_the_import_graph_of_primitives_has_no_circle():
    graph = {path.stem: imports_of(path)[0] for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    done: set[str] = set()

    def visit(name: str, stack: tuple[str, ...]) -> None:
        assert name not in stack, " -> ".join(stack + (name,))
        if name not in done:
            for dep in sorted(graph[name]):
                visit(dep, stack + (name,))
            done.add(name)

    for name in sorted(graph):
        visit(name, ())


def test_display_name_has_one_public_home():
    eq = P.parse("mul(mm(b_next, T(W)), dact)")
    assert [node.name for node in eq][:3] == ["mul:Layer", "id:Layer", "mm:Next,WeightT"]
    assert [P.display_name(node) for node in eq] == ["mul", "id", "mm", "id", "b_next", "T", "W", "id", "dact"]
    assert "display_name" in P.__all__
    assert str(eq) == P.format(eq) == "mul(mm(b_next, T(W)), dact)"     # Equation.__str__ is the text form
