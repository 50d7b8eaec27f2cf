"""A domain package imported without its extra names the missing distributions and the pip command to run.

Nothing is uninstalled: a child process makes a module unimportable (``sys.modules[name] = None``, or a finder in
front of ``sys.meta_path`` that refuses it, as for a module that is not installed) and then imports the domain.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from child import json_from_child
from seqcore.extras import DIST, EXTRAS, MissingExtraError, install_command, missing_modules, require_extra

ROOT = Path(__file__).resolve().parents[1]
DOMAINS = ("vision", "graphs", "timeseries", "pointcloud")


def test_each_missing_module_is_named_with_its_extra() -> None:
    # One child for every (domain, module) pair: a failed import leaves the domain out of sys.modules, so the next
    # pair imports it afresh, and torch is imported once.
    seen = json_from_child(f"""
        import importlib, json, sys
        import seqcore.extras as extras
        seen = {{}}
        for domain in {DOMAINS!r}:
            for module, _ in extras.EXTRAS[domain]:
                sys.modules[module] = None
                try:
                    importlib.import_module(domain)
                    seen[domain + ":" + module] = None
                except ImportError as err:
                    seen[domain + ":" + module] = [type(err).__name__, str(err), err.name,
                                                   getattr(err, "extra", None), domain in sys.modules]
                finally:
                    del sys.modules[module]
        print(json.dumps(seen))
    """)
    for domain in DOMAINS:
        for module, dist in EXTRAS[domain]:
            got = seen[f"{domain}:{module}"]
            assert got is not None, f"import {domain} succeeded without {module}"
            kind, message, name, extra, left_in_modules = got
            assert kind == "MissingExtraError", (domain, module, message)
            assert message == f"{domain} needs {dist}, which is not installed: pip install '{DIST}[{domain}]'"
            assert (name, extra, left_in_modules) == (module, domain, False)


def test_a_module_refused_by_a_finder_and_several_missing() -> None:
    # A finder that raises for the name stands for a module that is not installed at all.
    got = json_from_child("""
        import json, sys

        class Absent:
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in {"timm", "PIL"}:
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, Absent())
        try:
            import vision
            print(json.dumps(None))
        except ImportError as err:
            print(json.dumps([type(err).__name__, isinstance(err, ModuleNotFoundError), str(err), err.name]))
    """)
    assert got == ["MissingExtraError", True,
                   f"vision needs timm and pillow, which are not installed: pip install '{DIST}[vision]'", "timm"]


def test_every_domain_imports_with_its_extra_installed() -> None:
    got = json_from_child(f"""
        import json
        for domain in {DOMAINS!r}:
            __import__(domain)
        print(json.dumps("ok"))
    """)
    assert got == "ok"


def test_the_plot_hint_names_the_examples_extra() -> None:
    # matplotlib is in the examples extra, not in pointcloud's: the package imports without it, the plot says so.
    got = json_from_child("""
        import json, sys
        sys.modules["matplotlib"] = None
        import pointcloud
        try:
            pointcloud.plot_bev(points=[[0.0, 0.0, 0.0, 0.0]])
            print(json.dumps(None))
        except ImportError as err:
            print(json.dumps(str(err)))
    """)
    assert got is not None and install_command("examples") in got


def test_require_extra_and_install_command() -> None:
    assert install_command("graphs") == f"pip install '{DIST}[graphs]'"
    for extra in EXTRAS:
        assert missing_modules(extra) == []
        require_extra(extra)  # everything is installed in the project's venv
    assert issubclass(MissingExtraError, ModuleNotFoundError)


@pytest.mark.parametrize("call, error, words", [
    (lambda: require_extra("audio"), ValueError, "extra must be one of"),
    (lambda: require_extra(3), TypeError, "extra must be a str"),
    (lambda: require_extra("vision", package=1), TypeError, "package must be a str or None"),
    (lambda: install_command("Vision"), ValueError, "extra must be one of"),
    (lambda: missing_modules(None), TypeError, "extra must be a str"),
])
def test_bad_input_is_refused_by_name(call, error, words) -> None:
    with pytest.raises(error, match=words):
        call()


EXAMPLE_SCRIPTS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples").rglob("*.py")
                         if "require_extra(\"examples\"" in p.read_text(encoding="utf-8"))


def test_example_scripts_name_the_examples_extra() -> None:
    # Each script that imports matplotlib or tqdm at the top checks the extra first, so a user who installed only
    # a domain's extra is told which one to add instead of reading a bare ModuleNotFoundError.
    assert len(EXAMPLE_SCRIPTS) >= 8, EXAMPLE_SCRIPTS
    seen = json_from_child(f"""
        import json, runpy, sys
        seen = {{}}
        sys.modules["matplotlib"] = None
        for script in {EXAMPLE_SCRIPTS!r}:
            sys.argv = [script, "--help"]
            try:
                runpy.run_path(script, run_name="__main__")
                seen[script] = None
            except ImportError as err:
                seen[script] = [type(err).__name__, str(err)]
            except SystemExit:
                seen[script] = "ran --help"
        print(json.dumps(seen))
    """)
    for script in EXAMPLE_SCRIPTS:
        assert seen[script] == ["MissingExtraError", f"{script} needs matplotlib, which is not installed: "
                                                     f"pip install '{DIST}[examples]'"], (script, seen[script])
