"""A real SMTP server for development and tests (aiosmtpd) that keeps every
message it receives in a Maildir (`mail/` in the stack's VAR_DIR under `make
run`), so a person can open the mail folder with any mail reader, or just look
at the files.
"""

from __future__ import annotations

import argparse
import mailbox
import time
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from services.common.config import port_for, var_dir


class MaildirHandler:
    def __init__(self, directory: Path) -> None:
        # mailbox only lays out tmp/new/cur for a folder it creates itself.
        for sub in ("tmp", "new", "cur"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        self.maildir = mailbox.Maildir(str(directory), create=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = message_from_bytes(envelope.content, policy=policy.default)
        if "X-Envelope-To" not in message:
            message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.maildir.add(message)
        return "250 Message accepted for delivery"


def start(directory: Path, host: str = "127.0.0.1", port: int = 8025) -> Controller:
    controller = Controller(MaildirHandler(directory), hostname=host, port=port)
    controller.start()
    return controller


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="default SMTP_PORT, else 8025 (+ PORT_OFFSET)")
    parser.add_argument("--dir", type=Path, help="default the mail folder under VAR_DIR (var/mail)")
    args = parser.parse_args()
    args.port = args.port or port_for("smtp")
    args.dir = args.dir or var_dir() / "mail"
    controller = start(args.dir, args.host, args.port)
    print(f"smtp: listening on {args.host}:{args.port}, keeping mail in {args.dir}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
