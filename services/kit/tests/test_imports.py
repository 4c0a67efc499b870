"""The dependency between kit and contracts points one way: contracts use kit's leaves.

Each check runs in a fresh interpreter, where import order is what it would be in a
service process (the old cycle only showed for some first imports).
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import services.contracts
import services.kit
from services.kit.config import ROOT
from services.kit.registry import EVENTS

KIT_MODULES = sorted(f"services.kit.{m.name}" for m in pkgutil.iter_modules(services.kit.__path__))
CONTRACT_MODULES = ["services.contracts"] + sorted(
    f"services.contracts.{m.name}" for m in pkgutil.iter_modules(services.contracts.__path__))
# what contracts may use of kit: leaf modules that import no other Kepu package
KIT_LEAVES = {"services.kit", "services.kit.clock", "services.kit.boundary", "services.kit.logs",
              "services.kit.errors", "services.kit.registry", "services.kit.envelope"}


def fresh(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_no_kit_module_imports_contracts():
    seen = fresh(
        "import importlib, json, sys\n"
        f"for name in {KIT_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(n for n in sys.modules if n.startswith('services.'))))")
    assert "services.kit.outbox" in seen and "services.kit.events" in seen
    assert [n for n in seen if n.startswith("services.contracts")] == []


@pytest.mark.parametrize("module", CONTRACT_MODULES)
def test_any_contracts_module_imported_first_registers_every_event(module):
    seen = fresh(
        f"import json, sys, {module}\n"
        "from services.kit.registry import EVENTS\n"
        "print(json.dumps({'events': sorted(t for t, _ in EVENTS),\n"
        "                  'kit': sorted(n for n in sys.modules if n.startswith('services.kit'))"
        "}))")
    assert seen["events"] == sorted(t for t, _ in EVENTS)
    assert {t.split(".")[0] for t in seen["events"]} >= {"booking", "venues"}
    assert set(seen["kit"]) <= KIT_LEAVES, set(seen["kit"]) - KIT_LEAVES
