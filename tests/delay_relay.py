#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""A delay line for tests: relay Ethernet frames between two interfaces.

delay_relay.py IF_A IF_B DELAY_MS READYFILE: every frame that arrives on
IF_B goes out of IF_A DELAY_MS milliseconds later; frames arriving on IF_A go
out of IF_B at once. Run inside a namespace of its own whose interfaces have
no addresses (the kernel there only drops what it receives), as the known
delay netem would give on a kernel without netem. Writes READYFILE once both
sockets are bound; runs until killed.
"""
import heapq
import os
import select
import socket
import sys
import time

PACKET_OUTGOING = 4
ETH_P_ALL = 3


def main():
    if_a, if_b, delay = sys.argv[1], sys.argv[2], float(sys.argv[3]) / 1000.0
    socks = {}
    for name in (if_a, if_b):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((name, 0))
        s.setblocking(False)
        socks[name] = s
    a, b = socks[if_a], socks[if_b]
    with open(sys.argv[4], "w") as f:
        f.write(str(os.getpid()))
    held = []   # (due, seq, frame): IF_B -> IF_A
    seq = 0
    while True:
        now = time.monotonic()
        while held and held[0][0] <= now:
            a.send(heapq.heappop(held)[2])
        timeout = max(0.0, held[0][0] - now) if held else 1.0
        ready, _, _ = select.select([a, b], [], [], timeout)
        for s in ready:
            while True:
                try:
                    frame, addr = s.recvfrom(65535)
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue
                if s is a:
                    b.send(frame)
                else:
                    seq += 1
                    heapq.heappush(held, (time.monotonic() + delay, seq, frame))


if __name__ == "__main__":
    main()
