#!/usr/bin/python3
"""A stand-in for Mailpit: catches mail on SMTP port 1025 and lists it on
http://:8025 (`/` as text, `/api/v1/messages` as JSON). `mailpit readyz`
exits 0 when both ports answer."""

import email
import json
import signal
import socket
import sys
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SMTP_PORT, HTTP_PORT = 1025, 8025

if sys.argv[1:] == ["readyz"]:
    for port in (SMTP_PORT, HTTP_PORT):
        socket.create_connection(("127.0.0.1", port), timeout=3).close()
    sys.exit(0)

from aiosmtpd.controller import Controller  # noqa: E402 (not needed by readyz)

messages = []


class Catch:
    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        body = message.get_body(preferencelist=("plain", "html"))
        messages.append({"From": message["From"], "To": envelope.rcpt_tos, "Subject": message["Subject"],
                         "Message-ID": message["Message-ID"], "Text": body.get_content() if body else ""})
        print(f"mail: {message['Subject']!r} to {', '.join(envelope.rcpt_tos)}", flush=True)
        return "250 OK"


class Page(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/api/v1/messages"):
            body, kind = json.dumps({"total": len(messages), "messages": messages}), "application/json"
        else:
            body = "\n\n".join(f"From: {m['From']}\nTo: {', '.join(m['To'])}\n"
                                 f"Subject: {m['Subject']}\n\n{m['Text']}"
                                 for m in reversed(messages)) or "no mail yet"
            kind = "text/plain; charset=utf-8"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


# PID 1 ignores SIGTERM unless it asks for it: `podman stop` should not wait for SIGKILL.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
Controller(Catch(), hostname="0.0.0.0", port=SMTP_PORT).start()
print(f"mailcatcher: SMTP on {SMTP_PORT}, the mail on http://0.0.0.0:{HTTP_PORT}", flush=True)
ThreadingHTTPServer(("0.0.0.0", HTTP_PORT), Page).serve_forever()
