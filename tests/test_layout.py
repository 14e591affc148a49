"""ocrflow installs and imports under one name, and its public surface is what it declares."""

import importlib
import pkgutil
import sys

import ocrflow


def test_every_module_imports_under_the_ocrflow_namespace_only() -> None:
    found = pkgutil.walk_packages(ocrflow.__path__, "ocrflow.")
    modules = [info.name for info in found if not info.name.endswith("__main__")]
    assert "ocrflow.pipeline.page" in modules and "ocrflow.handlers.http.app" in modules
    for name in modules:
        importlib.import_module(name)
    # Nothing claims the generic names the folders have in the repository.
    assert not {"pipeline", "handlers"} & {name.split(".")[0] for name in sys.modules}


def test_the_public_surface_is_declared_and_resolves() -> None:
    assert set(ocrflow.__all__) == {"ApiFailure", "OcrflowClient", "Settings", "__version__"}
    for name in ocrflow.__all__:
        assert getattr(ocrflow, name) is not None
    assert ocrflow.OcrflowClient.__module__ == "ocrflow.handlers.client.api"
