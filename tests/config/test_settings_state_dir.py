"""`state_dir` holds all local state: the run ledger (`storage.root`) follows it unless set itself."""
from __future__ import annotations

import os

from shared.config.project import load_project
from shared.config.settings import Settings


def test_storage_root_follows_state_dir_unless_set():
    assert Settings().storage.root == os.path.join(".kspyder", "storage")
    assert Settings(state_dir="/var/kspyder").storage.root == os.path.join("/var/kspyder", "storage")
    assert Settings(state_dir="/var/kspyder", storage={"root": "/data/ledger"}).storage.root == "/data/ledger"
    assert Settings(state_dir="s", storage={"mode": "azure"}).storage.mode == "azure"


def test_moving_state_dir_moves_the_shipped_manifests_ledger(tmp_path):
    project = load_project("manifests", env={"KSPYDER_PII_KEY": "a-real-key", "KSPYDER_STATE_DIR": str(tmp_path)})
    assert project.settings.storage.root == os.path.join(str(tmp_path), "storage")
    override = load_project("manifests", env={"KSPYDER_PII_KEY": "a-real-key", "KSPYDER_STATE_DIR": str(tmp_path),
                                              "KSPYDER_STORAGE_ROOT": str(tmp_path / "elsewhere")})
    assert override.settings.storage.root == str(tmp_path / "elsewhere")
