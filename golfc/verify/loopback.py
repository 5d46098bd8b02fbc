"""Bring the loopback interface up, then become the given command: ``python loopback.py CMD ARGS...``.

golfc verify runs untrusted programs as ``unshare -rn -- python loopback.py torchrun ...``. A new network
namespace starts with its loopback down, and torchrun's rendezvous and gloo/NCCL between local ranks need it.
This does what ``ip link set lo up`` does, with one ioctl, so the isolation does not depend on iproute2 being
installed (the GPU image has no ip(8)). Run as a script by path: it imports nothing from golfc.
"""

import fcntl
import os
import socket
import struct
import sys

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1  # <linux/sockios.h>, <net/if.h>


def loopback_up() -> None:
    """Set IFF_UP on ``lo`` (struct ifreq: a 16-byte name, then the short flags)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print("usage: loopback.py COMMAND [ARGS...]", file=sys.stderr)
        sys.exit(2)
    try:
        loopback_up()
    except OSError as exc:
        print(f"error: cannot bring the loopback up in this network namespace: {exc}", file=sys.stderr)
        sys.exit(1)
    os.execvp(sys.argv[1], sys.argv[1:])
