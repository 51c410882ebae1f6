#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Send every frame of a pcap file out of IFACE through an AF_PACKET socket.

Run inside the sending namespace (ip netns exec NS sendraw.py IFACE FILE).
No scapy import, so it starts fast; prints the number of frames sent.
"""
import socket
import struct
import sys


def frames(path):
    with open(path, "rb") as f:
        hdr = f.read(24)
        magic = struct.unpack("<I", hdr[:4])[0]
        endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            caplen = struct.unpack(endian + "IIII", rec)[2]
            yield f.read(caplen)


def main():
    """sendraw.py IFACE FILE [PPS STOPFILE]: once, or cycling at about PPS until STOPFILE exists."""
    iface, path = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    n = 0
    if len(sys.argv) == 5:
        import os
        import time
        pps, stop = float(sys.argv[3]), sys.argv[4]
        all_frames = list(frames(path))
        t0 = time.monotonic()
        while not os.path.exists(stop):
            s.send(all_frames[n % len(all_frames)])
            n += 1
            ahead = n / pps - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
        print(n)
        return
    for fr in frames(path):
        s.send(fr)
        n += 1
    print(n)


if __name__ == "__main__":
    main()
