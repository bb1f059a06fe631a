import json

from ..backend.reference import Behaviour, ReferenceBackend
from ..conftest import backend_registry, cli_env, run_cli


def test_probe_vision_cli_exit_codes(tmp_path):
    with ReferenceBackend() as ref:
        path = backend_registry(tmp_path / "r.json", ref.endpoint, {"seeing": "ref-model"})
        r = run_cli("--registry", str(path), "probe-vision", "seeing")
        assert r.returncode == 0, r.stderr
        assert "verified" in r.stdout and "round 2" in r.stdout
        ref.behaviour.mode = "constant"
        r = run_cli("--registry", str(path), "probe-vision", "seeing", "--json")
        assert r.returncode == 1 and json.loads(r.stdout)["outcome"] == "not_supported"
    r = run_cli("--registry", str(path), "probe-vision", "seeing", "--timeout", "2")
    assert r.returncode == 1 and "UNKNOWN" in r.stdout and "Nothing was recorded" in r.stdout
    assert json.loads(path.read_text())[0]["probes"]["vision"]["vision_ok"] is False


def test_probe_vision_cli_with_image_and_timeout_from_env(tmp_path):
    from PIL import Image

    img = tmp_path / "photo.png"
    Image.new("RGB", (50, 50), (30, 70, 220)).save(img)
    (tmp_path / "notes.png").write_text("text")
    with ReferenceBackend() as ref:
        path = backend_registry(tmp_path / "r.json", ref.endpoint, {"seeing": "ref-model"})
        r = run_cli("--registry", str(path), "probe-vision", "seeing", str(img))
        assert r.returncode == 0 and "description: A picture dominated by blue." in r.stdout
        r = run_cli("--registry", str(path), "probe-vision", "seeing", str(tmp_path / "notes.png"))
        assert r.returncode == 2 and "not a readable image" in r.stderr
        r = run_cli("--registry", str(path), "probe-vision", "nobody")
        assert r.returncode == 1 and "No model named" in r.stderr
    with ReferenceBackend(Behaviour(mode="hang", hang_s=5)) as ref:
        path = backend_registry(tmp_path / "r2.json", ref.endpoint, {"slow": "ref-model"})
        r = run_cli("--registry", str(path), "probe-vision", "slow", env=cli_env(IMAGEWORKS_PROBE_TIMEOUT="0.5"))
        assert r.returncode == 1 and "did not answer within 0.5s" in r.stdout
