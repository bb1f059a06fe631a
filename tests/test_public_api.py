import imageworks_loader


def test_exported_members_are_pinned():
    assert imageworks_loader.__all__ == sorted([
        "ArtifactsMissing", "BackendError", "BackendNotReady", "BackendNotServing", "BackendTimeout", "BackendUnavailable",
        "CorruptArtifact", "ImageError", "ImagePathNotAllowed", "ImageTooLarge", "IntegrityError", "InvalidName", "InvalidSample",
        "Loader", "LoaderError", "LockTimeout", "LockViolation", "MissingCapabilities", "ModelEntry",
        "ModelNotFound", "NoModelForRole", "NotAnImage", "Registry", "RegistryError", "RegistryInvalid",
        "RegistryNotFound", "RegistryStore", "RegistryWriteError", "RequestError", "Selection", "Settings",
        "StateDB", "UnknownCapability", "__version__", "aggregate_sha256", "hash_file", "normalise_capabilities",
    ])
    for name in imageworks_loader.__all__:
        assert getattr(imageworks_loader, name) is not None


def test_every_error_is_a_loader_error_with_a_code():
    from imageworks_loader import errors

    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.LoaderError)
        assert cls.code and cls.__doc__


def test_core_does_not_import_adapters_or_web_stack():
    import subprocess
    import sys

    code = (
        "import sys, imageworks_loader.services, imageworks_loader.selection, imageworks_loader.integrity;"
        "bad = [m for m in ('fastapi', 'typer', 'uvicorn', 'httpx', 'PIL', 'imageworks_loader.api',"
        " 'imageworks_loader.cli') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
