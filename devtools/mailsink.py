"""A real SMTP server for development and tests (aiosmtpd) that keeps every
message it receives in a Maildir (`mail/` in the stack's VAR_DIR under `make
run`), so a person can open the mail folder with any mail reader, or just look
at the files.

Like a real mailbox, it keeps one copy per Message-ID and recipient: a
second copy (a sender that died between the 250 and recording the message
as sent, and sent it again) is answered 250 and dropped. The Message-IDs
already held are read back from the folder at start, so this holds across
restarts of the sink too. `received` counts what came in; `dropped` lists
the Message-ID of each copy left out.
"""

from __future__ import annotations

import argparse
import logging
import mailbox
import time
from email import message_from_bytes, policy
from email.message import Message
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from services.common.config import port_for, var_dir

log = logging.getLogger("mailsink")


def _copy_key(message: Message) -> tuple[str, str] | None:
    """What makes two messages the same delivery: Message-ID and recipients."""
    message_id = " ".join(str(message.get("Message-ID") or "").split())
    if not message_id:
        return None  # nothing to recognise a copy by: always kept
    envelope_to = str(message.get("X-Envelope-To") or "").split(",")
    return message_id, ", ".join(sorted(address.strip().lower() for address in envelope_to))


class MaildirHandler:
    def __init__(self, directory: Path) -> None:
        # mailbox only lays out tmp/new/cur for a folder it creates itself.
        for sub in ("tmp", "new", "cur"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        self.maildir = mailbox.Maildir(str(directory), create=True)
        self.held = self._held(directory)
        self.received = 0
        self.dropped: list[str] = []

    @staticmethod
    def _held(directory: Path) -> set[tuple[str, str]]:
        held = set()
        parser = BytesHeaderParser(policy=policy.default)
        for path in (*(directory / "new").iterdir(), *(directory / "cur").iterdir()):
            with path.open("rb") as fh:
                key = _copy_key(parser.parse(fh))
            if key is not None:
                held.add(key)
        return held

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = message_from_bytes(envelope.content, policy=policy.default)
        if "X-Envelope-To" not in message:
            message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.received += 1
        key = _copy_key(message)
        # No await between the check and the add: the event loop runs one at a time.
        if key is not None and key in self.held:
            self.dropped.append(key[0])
            log.info("dropped a second copy of %s to %s", *key)
            return "250 Message accepted for delivery (a copy of one already delivered)"
        self.maildir.add(message)
        if key is not None:
            self.held.add(key)
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
    said = logging.StreamHandler()  # our lines only: aiosmtpd logs every SMTP command at INFO
    said.setFormatter(logging.Formatter("smtp: %(message)s"))
    log.addHandler(said)
    log.setLevel(logging.INFO)
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
