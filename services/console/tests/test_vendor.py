"""The vendored JavaScript is exactly what the manifest pins, and pages load it by integrity."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from services.console.app import VENDOR_MANIFEST

VENDOR = VENDOR_MANIFEST.parent


def test_every_vendored_file_matches_its_pinned_sha384() -> None:
    manifest = json.loads(VENDOR_MANIFEST.read_text())
    assert {"htmx.min.js", "axe.min.js", "echarts.min.js"} <= set(manifest)
    for name, entry in manifest.items():
        digest = hashlib.sha384((VENDOR / name).read_bytes()).digest()
        assert entry["integrity"] == "sha384-" + base64.b64encode(digest).decode(), name
        assert entry["package"] and entry["version"].count(".") == 2, entry


def test_nothing_in_the_vendor_folder_is_unlisted() -> None:
    manifest = json.loads(VENDOR_MANIFEST.read_text())
    listed = set(manifest) | {"manifest.json"}
    present = {p.name for p in VENDOR.iterdir() if not p.name.endswith(".LICENSE")}
    assert present == listed


def test_pages_load_scripts_from_this_origin_with_their_integrity(client, fake) -> None:
    page = client.get("/login").get_data(as_text=True)
    manifest = json.loads(VENDOR_MANIFEST.read_text())
    assert f'src="/static/vendor/htmx.min.js" integrity="{manifest["htmx.min.js"]["integrity"]}"' \
        in page
    assert "http://" not in page.split("<body")[0] and "https://" not in page.split("<body")[0]


def test_no_template_has_inline_script_or_style() -> None:
    templates = Path(VENDOR_MANIFEST.parents[2] / "templates")
    for path in templates.rglob("*.html"):
        text = path.read_text()
        assert "<script>" not in text and " style=" not in text and "<style" not in text, path
        assert " on" + "click=" not in text, path
