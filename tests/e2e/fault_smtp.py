"""SMTP server with injectable faults for the fault tests, on Debian's python3-aiosmtpd.

Usage: fault_smtp.py OUT_DIR [--port PORT] [--tempfail-until-file PATH] [--hang-file PATH]

Listens on 127.0.0.1, on PORT or a port the system picks, and prints that port as its first
line. While the file given by --tempfail-until-file exists, every RCPT gets 451. While the
file given by --hang-file exists, DATA is not answered (the server checks every 100 ms)
and the file PATH.held shows that a message is held.
Each accepted message is written to OUT_DIR as <n>-<recipient>.eml, so a test can count
the messages per recipient.
"""

import argparse
import asyncio
import os
import sys

from aiosmtpd.smtp import SMTP


class Handler:
    def __init__(self, out_dir, tempfail_file, hang_file):
        self.out_dir = out_dir
        self.tempfail_file = tempfail_file
        self.hang_file = hang_file
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.tempfail_file and os.path.exists(self.tempfail_file):
            return "451 4.3.0 <%s>: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        # Bounded: a hang lasts at most ten minutes, like the process itself.
        for _ in range(6000):
            if not (self.hang_file and os.path.exists(self.hang_file)):
                break
            # Tells the test that a message is held.
            open(self.hang_file + ".held", "w").close()
            await asyncio.sleep(0.1)
        self.count += 1
        name = "%d-%s.eml" % (self.count, envelope.rcpt_tos[0])
        path = os.path.join(self.out_dir, name)
        with open(path + ".part", "wb") as message:
            message.write(envelope.original_content or envelope.content)
        os.rename(path + ".part", path)
        return "250 2.0.0 queued as %d" % self.count


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tempfail-until-file")
    parser.add_argument("--hang-file")
    args = parser.parse_args()
    handler = Handler(args.out_dir, args.tempfail_until_file, args.hang_file)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler), host="127.0.0.1", port=args.port, reuse_address=True
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    # The test kills this process; stop by ourselves after ten minutes at the latest.
    await asyncio.sleep(600)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
