"""A small SMTP server for the delivery tests, built on Debian's python3-aiosmtpd.

It listens on 127.0.0.1 on a free port, prints the port on its first line of output, and
stores every accepted message as <n>.eml with the envelope in <n>.json in the output
directory. Each MAIL that arrives with further commands already buffered behind it adds a
line to the file "pipelined", and each message whose data arrived with the next commands
behind it adds a line to the file "carried". Recipients given with --tempfail get 451 for their first RCPT and are accepted
afterwards; recipients given with --reject always get 550. With --pipelining the server
advertises PIPELINING (RFC 2920); aiosmtpd reads pipelined commands in order either way.

The first EHLO of each connection adds a line to the file "connections". With --ehlo-delay N
the server waits N seconds before it replies to each EHLO.

With --idle-timeout N the server replies 421 and closes a connection that sends no command
for N seconds, as aiosmtpd's timeout does.

With --cert and --key the server offers STARTTLS, or with --implicit-tls speaks TLS from the
first byte. With --user and --password it accepts AUTH PLAIN and LOGIN for that account only,
and appends each accepted login to the file "auth".
"""

import argparse
import asyncio
import json
import logging
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult


class Handler:
    def __init__(self, out_dir, tempfail, reject, pipelining, ehlo_delay):
        self.out_dir = out_dir
        self.ehlo_delay = ehlo_delay
        self.pipelining = pipelining
        self.tempfail = set(tempfail)
        self.reject = set(reject)
        self.count = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if not getattr(session, "counted", False):
            session.counted = True
            with open(os.path.join(self.out_dir, "connections"), "a") as log:
                log.write("%s\n" % hostname)
        await asyncio.sleep(self.ehlo_delay)
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        # Commands already buffered behind MAIL show that the client pipelined them.
        if server._reader._buffer:
            with open(os.path.join(self.out_dir, "pipelined"), "a") as log:
                log.write("MAIL\n")
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.reject:
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        if address in self.tempfail:
            self.tempfail.discard(address)
            return "451 4.3.0 <%s>: Temporary failure, try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        # Commands already buffered behind the data show that the client sent the next
        # transaction with this message's content.
        if server._reader._buffer:
            with open(os.path.join(self.out_dir, "carried"), "a") as log:
                log.write("DATA\n")
        self.count += 1
        name = os.path.join(self.out_dir, "%d" % self.count)
        with open(name + ".eml.tmp", "wb") as message:
            message.write(envelope.original_content)
        with open(name + ".json", "w") as meta:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}, meta)
        os.rename(name + ".eml.tmp", name + ".eml")
        return "250 2.0.0 Ok: queued as %d" % self.count


def authenticator(out_dir, user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login.decode() == user and auth_data.password.decode() == password
        if ok:
            with open(os.path.join(out_dir, "auth"), "a") as log:
                log.write("%s %s\n" % (mechanism, user))
        return AuthResult(success=ok, handled=False)

    return check


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--tempfail", action="append", default=[])
    parser.add_argument("--reject", action="append", default=[])
    parser.add_argument("--pipelining", action="store_true")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--implicit-tls", action="store_true")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--idle-timeout", type=float, default=300.0)
    parser.add_argument("--ehlo-delay", type=float, default=0.0)
    args = parser.parse_args()

    # aiosmtpd logs a deprecation notice on every successful AUTH, which is not ours to fix.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    handler = Handler(args.out, args.tempfail, args.reject, args.pipelining, args.ehlo_delay)
    context = None
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
    options = {"hostname": "sink.test", "enable_SMTPUTF8": True, "timeout": args.idle_timeout}
    if args.user:
        options["authenticator"] = authenticator(args.out, args.user, args.password)
        # With implicit TLS the session is encrypted before SMTP starts.
        options["auth_require_tls"] = not args.implicit_tls
    if context and not args.implicit_tls:
        options["tls_context"] = context
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, **options),
        host="127.0.0.1",
        port=0,
        ssl=context if args.implicit_tls else None,
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    # The server stops by itself even if the test that started it never does.
    await asyncio.sleep(args.max_seconds)
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
