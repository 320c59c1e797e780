"""training/'s imports (read from the source, TensorFlow not imported): never ``pipelines`` or
``renderers`` (DESIGN §3), no import of a training module inside a function, and no cycle among
the training modules (imports inside functions included)."""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE = os.path.join(ROOT, "training")


def _imports(path: str):
    """Yield (imported module, inside a function) for every import of the file at ``path``."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)

    def walk(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for a in child.names:
                    yield a.name, in_function
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                for a in child.names:  # "from training import data" imports training.data
                    yield (f"{child.module}.{a.name}" if child.module == "training" else child.module), in_function
            yield from walk(child, nested)

    yield from walk(tree, False)


def _graph():
    mods = sorted(f[:-3] for f in os.listdir(PACKAGE) if f.endswith(".py") and f != "__init__.py")
    return {m: list(_imports(os.path.join(PACKAGE, m + ".py"))) for m in mods}


def test_training_never_imports_pipelines_or_renderers():
    bad = [(m, name) for m, imps in _graph().items() for name, _ in imps
           if name.split(".")[0] in ("pipelines", "renderers")]
    assert not bad


def test_no_training_import_inside_a_function():
    bad = [(m, name) for m, imps in _graph().items() for name, inner in imps if inner and name.startswith("training")]
    assert not bad


def test_training_modules_form_no_cycle():
    graph = _graph()
    deps = {m: {n.split(".")[1] for n, _ in imps if n.startswith("training.")} & set(graph) for m, imps in graph.items()}
    order, done = [], set()
    while len(done) < len(deps):
        ready = sorted(m for m in deps if m not in done and deps[m] <= done)
        assert ready, f"import cycle among {sorted(set(deps) - done)}"
        order += ready
        done |= set(ready)
    # the tf.data basics sit below the layouts and tasks; the input pipeline above them
    assert order.index("readers") < order.index("layouts") < order.index("tasks") < order.index("data")
