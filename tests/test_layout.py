"""ocrflow installs and imports under one name, and its public surface is what it declares."""

import importlib
import pkgutil
import sys

import pytest

import ocrflow
import ocrflow.handlers

DEPRECATED = {"ocrflow.handlers.plugins"}  # importable, with a warning, for plug-ins written before
SERVICE = {"cli", "client", "http", "worker", "jobs", "storage", "runtime", "settings", "errors"}


def test_every_module_imports_under_the_ocrflow_namespace_only() -> None:
    found = pkgutil.walk_packages(ocrflow.__path__, "ocrflow.")
    modules = [info.name for info in found if not info.name.endswith("__main__")]
    assert "ocrflow.pipeline.page" in modules and "ocrflow.http.app" in modules
    for name in modules:
        if name not in DEPRECATED:
            importlib.import_module(name)
    # Nothing claims the generic names the folders have in the repository.
    assert not {"pipeline", "handlers"} & {name.split(".")[0] for name in sys.modules}


def test_the_handlers_package_holds_the_handler_api_and_built_ins_only() -> None:
    inside = {info.name for info in pkgutil.iter_modules(ocrflow.handlers.__path__)}
    assert {"api", "registry", "child", "fields", "validate"} <= inside
    assert not SERVICE & inside
    assert set(ocrflow.handlers.__all__) == {"Context", "Document", "Handler", "HandlerFailed"}


def test_the_old_plug_in_import_path_still_works_with_a_warning() -> None:
    sys.modules.pop("ocrflow.handlers.plugins", None)
    with pytest.warns(DeprecationWarning, match="import Context, Document, Handler"):
        old = importlib.import_module("ocrflow.handlers.plugins")
    assert old.Handler is ocrflow.handlers.Handler and old.Context is ocrflow.handlers.Context


def test_the_public_surface_is_declared_and_resolves() -> None:
    assert set(ocrflow.__all__) == {"ApiFailure", "OcrflowClient", "Settings", "__version__"}
    for name in ocrflow.__all__:
        assert getattr(ocrflow, name) is not None
    assert ocrflow.OcrflowClient.__module__ == "ocrflow.client.api"
