"""The CLI as users run it: subprocesses for exit codes and streams, CliRunner for quick cases."""

import json

import pytest
from typer.testing import CliRunner

from imageworks_loader.cli.main import app

from ..conftest import run_cli

runner = CliRunner()


def cli(registry_path, *args):
    return run_cli("--registry", str(registry_path), *args)


def test_list_json_is_sorted_and_canonical(registry_path):
    r = cli(registry_path, "list", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [m["name"] for m in rows] == ["old", "tiny", "vision-a", "vision-b"]
    assert rows[3]["capabilities"]["vision"] is True


def test_list_table_and_role_filter(registry_path):
    r = cli(registry_path, "list", "--role", "caption")
    assert r.returncode == 0
    assert "vision-a" in r.stdout and "tiny" not in r.stdout and "(deprecated)" in r.stdout


def test_registry_from_environment(registry_path):
    from ..conftest import cli_env

    r = run_cli("list", "--json", env=cli_env(IMAGEWORKS_REGISTRY=str(registry_path)))
    assert r.returncode == 0 and len(json.loads(r.stdout)) == 4


def test_select_json_and_role(registry_path):
    r = cli(registry_path, "select", "vision-b", "--require-vision", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["internal_model_id"] == "vision-b:7b"
    r = cli(registry_path, "select", "--role", "caption", "--require", "tools", "--json")
    assert json.loads(r.stdout)["name"] == "vision-a"


@pytest.mark.parametrize("args, code, needle", [
    (("select", "tiyn"), 1, "Did you mean 'tiny'?"),
    (("select", "tiny", "--require-vision"), 1, "lacks required capability: vision"),
    (("select", "tiny", "--require", "telepathy"), 2, "Unknown capability: telepathy"),
    (("select",), 2, "give a model NAME or --role ROLE"),
    (("select", "tiny", "--role", "x"), 2, "exactly one"),
    (("select", "--role", "nobody"), 1, "No model can serve role 'nobody'"),
    (("select", "../x"), 2, "Invalid model name"),
    (("verify", "vision-a"), 1, "model_path"),
    (("verify", "ghost"), 1, "No model named 'ghost'"),
    (("lock", "ghost"), 1, "No model named 'ghost'"),
    (("frobnicate",), 2, "No such command"),
    (("list", "--bogus"), 2, "No such option"),
])
def test_failures_give_clear_message_and_exit_code(registry_path, args, code, needle):
    r = cli(registry_path, *args)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert needle in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_verify_lock_unlock_cycle_and_drift(registry_path, model_dir):
    r = cli(registry_path, "verify", "tiny")
    assert r.returncode == 0, r.stderr
    assert "aggregate_sha256" in r.stdout and "4 files" in r.stdout
    assert "\x1b[" not in r.stderr  # no progress bar on a pipe
    r = cli(registry_path, "lock", "tiny", "--set-expected", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["locked"] is True
    assert cli(registry_path, "select", "tiny").returncode == 0
    (model_dir / "model-00001-of-00002.safetensors").write_bytes(b"swapped")
    r = cli(registry_path, "select", "tiny")
    assert r.returncode == 1 and "changed: model-00001-of-00002.safetensors" in r.stderr and "verify" in r.stderr
    r = cli(registry_path, "verify", "tiny", "--json")
    assert r.returncode == 1 and "Expected aggregate sha256" in r.stderr
    r = cli(registry_path, "unlock", "tiny")
    assert r.returncode == 0 and "unlocked" in r.stdout
    assert cli(registry_path, "select", "tiny").returncode == 0


def test_missing_registry_message(tmp_path):
    r = run_cli("--registry", str(tmp_path / "none.json"), "list")
    assert r.returncode == 1 and "Registry not found" in r.stderr and "--registry" in r.stderr


def test_invalid_registry_lists_every_problem(tmp_path):
    p = tmp_path / "r.json"
    p.write_text(json.dumps([{"name": "a", "backend": "x"}, {"name": "a", "backend": "y"}, {"name": ".x", "backend": "z"}]))
    r = run_cli("--registry", str(p), "list")
    assert r.returncode == 1
    assert "entry 2 ('.x'): field name" in r.stderr


def test_python_dash_m_and_help_examples():
    r = run_cli("--help")
    assert r.returncode == 0 and "select" in r.stdout and "verify" in r.stdout


@pytest.mark.parametrize("command", sorted(c.name for c in app.registered_commands))
def test_every_command_has_help_with_an_example(command):
    r = runner.invoke(app, [command, "--help"])
    assert r.exit_code == 0, r.output
    assert "Examples:" in r.output and "imageworks-loader " + command in r.output


def test_progress_bar_only_on_a_terminal(registry_path):
    import os
    import pty
    import subprocess
    import sys

    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "imageworks_loader", "--registry", str(registry_path), "verify", "tiny"],
                         stdin=slave, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    out, _ = p.communicate(timeout=60)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert p.returncode == 0
    assert b"Verifying" in b"".join(chunks)


@pytest.mark.parametrize("var, value, needle", [
    ("IMAGEWORKS_PROBE_TIMEOUT", "soon", "is not a number of seconds"),
    ("IMAGEWORKS_LOCK_TIMEOUT", "-1", "must be positive"),
    ("IMAGEWORKS_METRICS_WINDOW", "0", "must be a positive integer"),
])
def test_bad_settings_are_usage_errors(registry_path, var, value, needle):
    from ..conftest import cli_env

    r = run_cli("--registry", str(registry_path), "list", env=cli_env(**{var: value}))
    assert r.returncode == 2 and needle in r.stderr and var in r.stderr
