"""The house stays in order: import contracts hold, every app's public face is declared module by module, no
module is too long, no app outgrows the rest, and docs/architecture.md says what the contracts say."""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
CONTRACTS = BASE_DIR / ".importlinter"
ARCHITECTURE = BASE_DIR / "docs" / "architecture.md"
#: Packages whose code counts (tests and migrations do not): the product, the platform, and the tools.
SOURCE_ROOTS = ("config", "payments", "ledger", "fraud", "webhooks", "reconciliation", "sandbox_acquirer", "bench")
MAX_MODULE_LINES = 500


def _contracts() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(CONTRACTS)
    return parser


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.strip().splitlines() if line.strip()]


def _public_faces() -> dict[str, tuple[list[str], list[str]]]:
    """{package: (public modules, internal modules)} from each `# public face of PACKAGE: a, b` comment and the
    `forbidden_modules` of the contract section that follows it."""
    text = CONTRACTS.read_text()
    faces: dict[str, tuple[list[str], list[str]]] = {}
    for match in re.finditer(
        r"^# public face of ([\w.]+): (.+?)\n\[importlinter:contract:([\w-]+)\]", text, re.M | re.S
    ):
        package, public, section = match.group(1), match.group(2), match.group(3)
        public_modules = [m.strip() for m in re.sub(r"\n#\s*", " ", public).split(",") if m.strip()]
        internal = _lines(_contracts()[f"importlinter:contract:{section}"]["forbidden_modules"])
        faces[package] = (public_modules, internal)
    return faces


def _submodules(package: str) -> set[str]:
    """The direct submodules and subpackages of `package` (dotted), migrations and management commands aside."""
    folder = BASE_DIR / package.replace(".", "/")
    found = set()
    for child in folder.iterdir():
        name = child.stem if child.suffix == ".py" else child.name
        if name in {"__init__", "migrations", "management", "templates", "__pycache__", "apps"}:
            continue
        if child.suffix == ".py" or (child.is_dir() and (child / "__init__.py").exists()):
            found.add(f"{package}.{name}")
    return found


def test_import_contracts_hold():
    """lint-imports passes (.importlinter): layers, no cycles, public faces, an independent sandbox acquirer."""
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint)], cwd=BASE_DIR, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " BROKEN" not in result.stdout


@pytest.mark.parametrize("package", ["ledger", "payments", "fraud", "webhooks", "reconciliation"])
def test_every_app_declares_its_public_face_module_by_module(package: str):
    """Each module of an app is either on its public face or forbidden to other packages; none is forgotten."""
    faces = _public_faces()
    assert package in faces, f".importlinter has no '# public face of {package}:' contract"
    public, internal = faces[package]
    declared = set(public) | set(internal)
    assert not set(public) & set(internal), "a module cannot be both public and internal"
    missing = _submodules(package) - declared
    assert not missing, f"declare these modules public or internal in .importlinter: {sorted(missing)}"


def test_the_platform_declares_its_public_face():
    """Every platform package lists which of its modules product apps may import."""
    public, internal = _public_faces()["config.platform"]
    for package in ("config.platform.outbox", "config.platform.merchants", "config.platform.idempotency"):
        modules = _submodules(package)
        assert modules <= set(public) | set(internal), sorted(modules - set(public) - set(internal))


def _source_files() -> list[Path]:
    files = []
    for root in SOURCE_ROOTS:
        files += [p for p in (BASE_DIR / root).rglob("*.py") if "migrations" not in p.parts]
    return files


def test_no_module_is_over_500_lines():
    """A module over 500 lines usually holds two things (tests and migrations aside)."""
    long = {str(p.relative_to(BASE_DIR)): n for p in _source_files() if (n := len(p.read_text().splitlines())) > 500}
    assert not long, long


def test_the_largest_app_holds_at_most_a_third_of_the_code():
    """No app (a Django app: each product app and each platform app) holds more than a third of the non-test code."""
    total = 0
    per_app: dict[str, int] = {}
    apps = [
        "payments",
        "ledger",
        "fraud",
        "webhooks",
        "reconciliation",
        "config/platform/outbox",
        "config/platform/merchants",
        "config/platform/idempotency",
    ]
    for root in SOURCE_ROOTS:
        for path in (BASE_DIR / root).rglob("*.py"):
            lines = len(path.read_text().splitlines())
            total += lines
            rel = path.relative_to(BASE_DIR).as_posix()
            for app in apps:
                if rel.startswith(app + "/"):
                    per_app[app] = per_app.get(app, 0) + lines
    largest = max(per_app, key=per_app.__getitem__)
    assert per_app[largest] * 3 <= total, (largest, per_app[largest], total)


def test_architecture_doc_shows_the_layers_the_contract_checks():
    """docs/architecture.md's layer block is the layers contract, line for line."""
    layers = _lines(_contracts()["importlinter:contract:layers"]["layers"])
    doc = ARCHITECTURE.read_text()
    block = re.search(r"<!-- layers: checked against \.importlinter -->\n```\n(.*?)```", doc, re.S)
    assert block, "docs/architecture.md lost its layers block"
    assert _lines(block.group(1)) == layers


def test_architecture_doc_lists_each_public_face_the_contracts_declare():
    """Each app's public modules in docs/architecture.md are the ones its contract declares."""
    doc = ARCHITECTURE.read_text()
    for package, (public, _) in _public_faces().items():
        row = re.search(rf"^\| `{re.escape(package)}` \|[^|]*\| (.*?) \|$", doc, re.M)
        assert row, f"docs/architecture.md has no public-face row for {package}"
        listed = sorted(re.findall(r"`([\w.]+)`", row.group(1)))
        assert listed == sorted(public), (package, listed)


def test_architecture_doc_walks_a_payment_through_at_most_twelve_files_that_exist():
    """The table of a payment's way names one existing file per step, at most a dozen."""
    doc = ARCHITECTURE.read_text()
    section = doc.split("## The way of one payment, from HTTP to webhook", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if re.match(r"^\| \d+ \|", line)]
    files = [re.findall(r"`([\w/]+\.py)`", row.rsplit("|", 2)[1]) for row in rows]
    assert 0 < len(rows) <= 12
    assert all(len(names) == 1 for names in files), files
    for [name] in files:
        assert (BASE_DIR / name).is_file(), name
    for path in re.findall(r"`([\w/]+\.py)`", section):
        assert (BASE_DIR / path).is_file(), path
