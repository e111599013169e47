"""Source bundles: reproducible bytes, allow-listed content, and each one starts on its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import requests

from deploy.agreement import terraform_blocks, terraform_locals, terraform_resource
from deploy.bundle import COMMON_DATA_FILES, bundle_members, function_names, write_bundle
from deploy.smoke import PROBES

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy.sh"


def build_with_script(out: Path) -> dict[str, bytes]:
    """Run ``./deploy.sh build --out OUT`` and return each zip's bytes by file name."""
    done = subprocess.run([str(SCRIPT), "build", "--out", str(out)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.zip"))}


def test_deploy_sh_build_twice_gives_identical_bytes(tmp_path: Path) -> None:
    # When the bundles are built twice
    first = build_with_script(tmp_path / "one")
    second = build_with_script(tmp_path / "two")
    # Then there is one per function and the bytes are the same
    assert sorted(first) == [f"{name}.zip" for name in function_names()]
    assert first == second


def test_bundle_bytes_do_not_depend_on_timestamps_or_permissions(tmp_path: Path) -> None:
    # Given a copy of the sources with other modification times and modes, as on another machine
    name = function_names()[0]
    copy = tmp_path / "checkout"
    for member in bundle_members(name):
        target = copy / member
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / member, target)
        target.chmod(0o600)
        os.utime(target, (1_900_000_000, 1_900_000_000))
    # When both are bundled
    here = write_bundle(name, tmp_path / "here").read_bytes()
    there = write_bundle(name, tmp_path / "there", root=copy).read_bytes()
    # Then the bytes are identical
    assert here == there


@pytest.mark.parametrize("name", function_names())
def test_a_bundle_holds_its_main_py_common_and_requirements_only(name: str, tmp_path: Path) -> None:
    # Given a built bundle
    with zipfile.ZipFile(write_bundle(name, tmp_path)) as archive:
        entries = archive.infolist()
    names = [e.filename for e in entries]
    # Then it holds this function's main.py, requirements.txt, common's Python and data files
    assert f"functions/{name}/main.py" in names and "requirements.txt" in names
    assert set(COMMON_DATA_FILES) <= set(names)
    others = [n for n in names if n not in {f"functions/{name}/main.py", "requirements.txt", *COMMON_DATA_FILES}]
    assert others and all(n.startswith("common/") and n.endswith(".py") for n in others)
    assert not any("__pycache__" in n for n in names)
    # And entries are sorted, dated 1980-01-01, mode 0644, stored
    assert names == sorted(names)
    assert {(e.date_time, e.external_attr >> 16, e.compress_type, e.create_system) for e in entries} == {
        ((1980, 1, 1, 0, 0, 0), 0o100644, zipfile.ZIP_STORED, 3)}


def test_every_file_common_ships_is_python_or_a_listed_data_file() -> None:
    # A data file common reads that is not on the allow-list would be missing in production.
    tracked = subprocess.run(["git", "ls-files", "common"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    assert [p for p in tracked if not p.endswith(".py") and p not in COMMON_DATA_FILES] == []


@pytest.mark.slow
@pytest.mark.parametrize("name", function_names())
def test_each_unpacked_bundle_starts_and_refuses_a_tokenless_request(name: str, started: dict[str, str]) -> None:
    # Given the bundle running from its own folder on a virtualenv with only requirements.txt
    method, path = PROBES[name]
    # When one of its routes is called without a token
    answer = requests.request(method, started[name] + path, timeout=10)
    # Then it answers 401 as problem+json (settings, routing and auth all imported from the bundle)
    assert answer.status_code == 401, answer.text
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert answer.json()["code"]


def test_terraform_deploys_the_built_bundles_not_an_archive_of_the_repository() -> None:
    # Given the configuration's locals and the source object
    bundle = terraform_resource("google_storage_bucket_object", "bundle")
    function = terraform_resource("google_cloudfunctions2_function", "fn")
    all_functions = terraform_locals()["all_functions"]
    # Then each function's object is its own dist/<name>.zip, named by its MD5, and the function
    # builds from that object, serving functions/<name>/main.py as in the bundle
    assert 'bundle = "${path.module}/../dist/${key}.zip"' in all_functions
    assert (bundle["for_each"], bundle["source"]) == ("${local.functions}", "${each.value.bundle}")
    assert bundle["name"] == "${each.key}-${filemd5(each.value.bundle)}.zip"
    build = function["build_config"][0]
    assert build["source"][0]["storage_source"][0]["object"] == "${google_storage_bucket_object.bundle[each.key].name}"
    assert build["environment_variables"]["GOOGLE_FUNCTION_SOURCE"] == "${each.value.source_file}"
    assert 'source_file = "functions/${key}/main.py"' in all_functions
    assert "archive_file" not in str(terraform_blocks().get("data", []))
