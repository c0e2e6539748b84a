"""The operator image has no torch and the operator never sees the local cluster's code."""

import subprocess
import sys


def _modules_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return set(out.stdout.split())


def test_operator_imports_no_torch_and_no_localcluster() -> None:
    loaded = _modules_after_import("tandem.operator")
    assert "torch" not in loaded
    assert not any(m.startswith("tandem.localcluster") for m in loaded)


def test_operator_folder_does_not_shadow_stdlib_operator() -> None:
    import operator

    assert hasattr(operator, "itemgetter")
