"""The JavaScript that renders ipywidgets in the exported HTML, fetched once at install time, never at run time.

nbconvert's HTML loads ``require.js`` and ``@jupyter-widgets/html-manager`` from a CDN by default, so widgets
show up blank on a machine without internet (nbconvert issues #923, #1666). ``make install`` runs
``python -m helpers.reporting.widget_assets fetch``, which downloads the two pinned npm tarballs from the npm
registry, checks them against the registry's SHA-512 integrity strings below, and unpacks the files the
browser needs into ``<venv>/share/ci-workbench/widgets``. The runner copies them next to the reports
(``reports/assets/widgets``) and points nbconvert's ``require_js_url`` / ``widget_renderer_url`` there, so
reports keep working when the folder is zipped and mailed.

Usage::

    python -m helpers.reporting.widget_assets fetch      # download and verify (skips when already present)
    python -m helpers.reporting.widget_assets check      # exit 1 with a message when the assets are missing
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import io
import os
import shutil
import sys
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ASSETS_ENV = "CIW_WIDGET_ASSETS"  # override the folder, e.g. for a shared read-only install


@dataclass(frozen=True)
class NpmPackage:
    name: str
    version: str
    integrity: str  # the registry's ``dist.integrity`` (``npm view NAME@VERSION dist.integrity``)
    files: tuple[str, ...]  # glob patterns of paths inside the tarball's ``package/`` folder

    @property
    def tarball_url(self) -> str:
        short = self.name.split("/")[-1]
        return f"https://registry.npmjs.org/{self.name}/-/{short}-{self.version}.tgz"


# html-manager 1.0.x is the renderer for ipywidgets 8 (widget state version 2, controls 5.0).
PACKAGES = (
    NpmPackage("@jupyter-widgets/html-manager", "1.0.15",
               "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
               # embed-amd.js bundles the base, controls and output widgets; the rest are Font Awesome files
               # its stylesheet refers to relative to the script.
               ("dist/embed-amd.js", "dist/*.woff2", "dist/*.woff", "dist/*.ttf", "dist/*.eot", "dist/*.svg",
                "dist/embed.js.LICENSE.txt")),
    NpmPackage("requirejs", "2.3.8",
               "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
               ("require.js",)),
)
REQUIRE_JS = "require.js"
RENDERER_JS = "embed-amd.js"


def assets_dir() -> Path:
    """Where the fetched files live: ``$CIW_WIDGET_ASSETS`` or ``<sys.prefix>/share/ci-workbench/widgets``."""
    return Path(os.environ.get(ASSETS_ENV) or Path(sys.prefix) / "share" / "ci-workbench" / "widgets")


def missing(folder: Path | None = None) -> list[str]:
    """The required files not present in ``folder`` (empty when the widget renderer is installed)."""
    folder = folder or assets_dir()
    return [f for f in (REQUIRE_JS, RENDERER_JS) if not (folder / f).is_file()]


def verify_integrity(data: bytes, integrity: str) -> None:
    """Raise ``ValueError`` unless ``data`` matches an npm ``sha512-<base64>`` integrity string."""
    algo, _, expected = integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if actual != expected:
        raise ValueError(f"integrity mismatch: expected {integrity}, got {algo}-{actual}")


def _wanted(member: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(member.removeprefix("package/"), pat) for pat in patterns)


def unpack(tarball: bytes, package: NpmPackage, dest: Path) -> list[Path]:
    """Extract the wanted files of ``package`` (flattened) into ``dest``; return the written paths."""
    written = []
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile() and _wanted(member.name, package.files):
                target = dest / Path(member.name).name
                with tar.extractfile(member) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
                written.append(target)
    return written


def fetch(dest: Path | None = None, force: bool = False, timeout: float = 120) -> Path:
    """Download, verify and unpack the pinned packages into ``dest``; a no-op when already complete."""
    dest = dest or assets_dir()
    if not force and not missing(dest):
        return dest
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for package in PACKAGES:
        with urllib.request.urlopen(package.tarball_url, timeout=timeout) as response:
            data = response.read()
        verify_integrity(data, package.integrity)
        unpack(data, package, tmp)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def copy_to(reports_dir: Path) -> Path | None:
    """Copy the installed assets to ``reports_dir/assets/widgets``; None when they are not installed."""
    source = assets_dir()
    if missing(source):
        return None
    target = Path(reports_dir) / "assets" / "widgets"
    target.mkdir(parents=True, exist_ok=True)
    for f in source.iterdir():
        if f.is_file() and (not (target / f.name).exists() or (target / f.name).stat().st_size != f.stat().st_size):
            shutil.copy2(f, target / f.name)
    return target


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "check"
    if command == "fetch":
        try:
            path = fetch(force="--force" in args)
        except (OSError, ValueError) as exc:
            print(f"Could not fetch the widget renderer from the npm registry: {exc}", file=sys.stderr)
            return 1
        print(f"Widget renderer ready in {path}")
        return 0
    if command == "check":
        gone = missing()
        if gone:
            print(f"Widget renderer missing in {assets_dir()} ({', '.join(gone)}): run "
                  "`python -m helpers.reporting.widget_assets fetch` (make install does this)", file=sys.stderr)
            return 1
        print(f"Widget renderer installed in {assets_dir()}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
