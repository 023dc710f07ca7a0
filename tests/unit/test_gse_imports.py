"""The gse package's modules import each other without a cycle (the command
line and the main menu both go through gse/dispatch.py)."""
import ast
import os

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "gse")


def imports():
    """{module: the gse modules it imports, at the top or inside functions}."""
    names = {f[:-3] for f in os.listdir(PACKAGE) if f.endswith(".py")}
    graph = {}
    for name in names:
        with open(os.path.join(PACKAGE, name + ".py"), encoding="utf-8") as fh:
            tree = ast.parse(fh.read())
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    found.add(node.module.split(".")[0])
                else:
                    found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gse."):
                found.add(node.module.split(".")[1])
        graph[name] = found & names - {name}
    return graph


def cycle(graph):
    """One import cycle as a list of modules, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def test_no_import_cycle():
    assert cycle(imports()) is None


def test_the_cycle_finder_finds_one():
    assert cycle({"cli": {"menu"}, "menu": {"cli"}}) == ["cli", "menu", "cli"]
    assert "dispatch" in imports()["menu"] and "cli" not in imports()["menu"]
