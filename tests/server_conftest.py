"""The server tests' conftest, for the test folders that run the real server too.

Every conftest module is called ``conftest``, so another folder cannot import the server tests' one by
name; `load_server_conftest` loads it by path under a name of its own (once per test session).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SERVER_TESTS = Path(__file__).resolve().parent / "server"
_NAME = "server_tests_conftest"


def load_server_conftest() -> ModuleType:
    """The module of ``tests/server/conftest.py`` (with `RunningServer` and the `running_server` fixture)."""
    loaded = sys.modules.get(_NAME)
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(_NAME, SERVER_TESTS / "conftest.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
