"""``jobqueue keys rotate-secret``: re-encrypt the stored request parts with the first key."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console

from api.cli_local import CliError, load_settings, open_engine

_HELP = "\n\n".join(
    (
        "Re-encrypt the headers, params and body of every stored task with the first key of "
        "JOBQUEUE_SECRET_KEY (rows stored in plaintext are encrypted too). Every key listed "
        "still decrypts, so list the new key first and the old ones after it, give that list to "
        "every process, run this, then drop the old keys.",
        'Example: JOBQUEUE_SECRET_KEY="$NEW,$OLD" jobqueue keys rotate-secret',
    )
)


def register(keys_app: typer.Typer) -> None:
    """Add ``rotate-secret`` to the ``keys`` command group."""
    keys_app.command("rotate-secret", help=_HELP)(rotate_secret)


def rotate_secret() -> None:
    config = load_settings().engine_config()
    if not config.secret_keys:
        raise CliError(
            "JOBQUEUE_SECRET_KEY is not set: there is no key to encrypt with",
            "fix: JOBQUEUE_SECRET_KEY=<new key>,<old key> (make a key with `python -c "
            "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)",
        )

    async def main() -> int:
        engine = await open_engine(config, check_targets=False)
        try:
            return await engine.rotate_secret()
        finally:
            await engine.close()

    try:
        count = asyncio.run(main())
    except ValueError as exc:
        raise CliError(
            f"JOBQUEUE_SECRET_KEY: {exc}",
            "fix: list every key rows may be encrypted with (new first, then the old ones)",
            code=1,
        ) from exc
    Console().print(
        f"re-encrypted {count} stored rows (task requests, job params) with the first key"
    )
