"""SMTP server for the end-to-end tests, on Debian's python3-aiosmtpd.

Usage: smtp_server.py OUT_DIR [--tempfail ADDRESS]... [--reject ADDRESS]... [--delay SECONDS]
                      [--quit-log FILE]

Listens on 127.0.0.1 on a port the system picks and prints that port as its first line.
A --tempfail address gets 451 on its first RCPT and is accepted later; a --reject address
always gets 550. With --delay the server waits that many seconds before it answers DATA.
Each accepted message is written to OUT_DIR as <n>.eml. With --quit-log, each QUIT adds a
line to FILE.
"""

import argparse
import asyncio
import os
import sys

from aiosmtpd.smtp import SMTP


class Handler:
    def __init__(self, out_dir, tempfail, reject, delay, quit_log):
        self.out_dir = out_dir
        self.quit_log = quit_log
        self.delay = delay
        self.tempfail = set(tempfail)
        self.reject = set(reject)
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.reject:
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        if address in self.tempfail:
            self.tempfail.discard(address)
            return "451 4.3.0 <%s>: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_QUIT(self, server, session, envelope):
        if self.quit_log:
            with open(self.quit_log, "a") as log:
                log.write("QUIT\n")
        return "221 Bye"

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.delay)
        self.count += 1
        path = os.path.join(self.out_dir, "%d.eml" % self.count)
        with open(path + ".part", "wb") as message:
            message.write(envelope.original_content or envelope.content)
        os.rename(path + ".part", path)
        return "250 2.0.0 queued as %d" % self.count


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--tempfail", action="append", default=[])
    parser.add_argument("--reject", action="append", default=[])
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--quit-log")
    args = parser.parse_args()
    handler = Handler(args.out_dir, args.tempfail, args.reject, args.delay, args.quit_log)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler), host="127.0.0.1", port=0)
    print(server.sockets[0].getsockname()[1], flush=True)
    # The test kills this process; stop by ourselves after ten minutes at the latest.
    await asyncio.sleep(600)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
