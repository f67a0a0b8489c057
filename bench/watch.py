#!/usr/bin/env python3
# Samples goim-job's counters (JOB_STATS over one RPC connection, the
# unauthenticated plane bench/lib.sh runs), comet's status page and the
# CPU ticks of some processes every INTERVAL ms, and prints one line per
# sample: "t=<unix s> online=<comet> ticks_<name>=<n> <job counter>=<n> ...";
# comet's room history counters (its status page's "history", summed over
# the workers) are history_<name>: history_recovered, history_gaps,
# history_recovered_msgs, history_kept, ...
# It stops by itself once every GOAL holds (or at DEADLINE s), printing
# "done=<unix s>" (the first sample where they all held) or "timeout=...".
#
#   bench/watch.py --job 127.0.0.1:4329 --status 127.0.0.1:4302 \
#       [--pids nginx=1,2 --pids job=3] [--mark clients='DIR/client.*.err'] \
#       [--interval 10] [--deadline 120] \
#       [--goal online>=10000 --goal ensure_pending<=0 ...] [--keys a,b,...]
#
# --mark NAME=GLOB: marked_<name> counts the files matching GLOB (looked
# for at every sample: they may appear after the start) in which goim-cli
# has said "goim-cli: expected N messages after S s" (--expect-stay: all
# its clients' messages are there); each file is read on from where the
# last sample left it.
#
# A goal is a counter (a job counter, "online", "history_<name>",
# "ticks_<name>" or "marked_<name>"), >= or <=, and a number.  Used by
# bench/recovery.sh.

import argparse
import glob
import http.client
import json
import re
import socket
import struct
import sys
import time

JOB_STATS = 402
REPLY = 0x40000000


def varint(b, i):
    v = s = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return v, i


def stats_reply(body):
    """StatsReply{map<string, int64> counters = 1}"""
    out, i = {}, 0
    while i < len(body):
        tag, i = varint(body, i)
        if tag & 7 != 2:
            raise ValueError("StatsReply: wire type %d" % (tag & 7))
        n, i = varint(body, i)
        entry, i = body[i:i + n], i + n
        if tag >> 3 != 1:
            continue
        k, v, j = "", 0, 0
        while j < len(entry):
            t, j = varint(entry, j)
            if t == 0x0A:
                n2, j = varint(entry, j)
                k, j = entry[j:j + n2].decode(), j + n2
            elif t == 0x10:
                v, j = varint(entry, j)
                if v >= 1 << 63:
                    v -= 1 << 64
            else:
                raise ValueError("StatsReply entry: tag %d" % t)
        out[k] = v
    return out


class Job:
    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)), timeout=5)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.seq = 0
        self.buf = b""

    def stats(self):
        self.seq += 1
        self.s.sendall(struct.pack(">IHHII", 16, 16, 1, JOB_STATS, self.seq))
        while True:
            if len(self.buf) >= 16:
                plen, hlen, _, op, seq = struct.unpack(">IHHII", self.buf[:16])
                if len(self.buf) >= plen:
                    body, self.buf = self.buf[hlen:plen], self.buf[plen:]
                    if seq != self.seq:
                        continue
                    if op != JOB_STATS | REPLY:
                        raise RuntimeError("JOB_STATS: operation %#x" % op)
                    return stats_reply(body)
            d = self.s.recv(65536)
            if not d:
                raise RuntimeError("job closed the connection")
            self.buf += d


def ticks(pids):
    s = 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                v = f.read().rsplit(")", 1)[1].split()
            s += int(v[11]) + int(v[12])      # utime, stime
        except OSError:
            pass
    return s


class Marks:
    """the files of a glob in which goim-cli said it has what it expected"""

    def __init__(self, pattern):
        self.pattern = pattern
        self.files = {}         # path -> [offset, rest of a line]
        self.marked = set()

    def count(self):
        for path in glob.glob(self.pattern):
            if path in self.marked:
                continue
            st = self.files.setdefault(path, [0, b""])
            try:
                with open(path, "rb") as f:
                    f.seek(st[0])
                    data = f.read()
            except OSError:
                continue
            st[0] += len(data)
            lines = (st[1] + data).split(b"\n")
            st[1] = lines.pop()
            if any(l.startswith(b"goim-cli: expected ") for l in lines):
                self.marked.add(path)
        return len(self.marked)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--job", required=True)
    ap.add_argument("--status", required=True)
    ap.add_argument("--pids", action="append", default=[])
    ap.add_argument("--mark", action="append", default=[])
    ap.add_argument("--interval", type=float, default=10)
    ap.add_argument("--deadline", type=float, default=120)
    ap.add_argument("--goal", action="append", default=[])
    ap.add_argument("--keys", default="", help="counters to print (default all)")
    a = ap.parse_args()

    pids = {}
    for spec in a.pids:
        name, _, ps = spec.partition("=")
        pids[name] = [int(p) for p in ps.split(",") if p]
    marks = {name: Marks(pattern) for name, pattern in
             (spec.partition("=")[::2] for spec in a.mark)}
    goals = []
    for g in a.goal:
        m = re.fullmatch(r"(\w+)(>=|<=)(-?\d+)", g)
        if not m:
            sys.exit("watch.py: bad goal %r" % g)
        goals.append((m[1], m[2], int(m[3])))

    job = Job(a.job)
    host, port = a.status.rsplit(":", 1)
    web = http.client.HTTPConnection(host, int(port), timeout=5)
    end = time.time() + a.deadline
    while True:
        t = time.time()
        st = job.stats()
        web.request("GET", "/status")
        status = json.loads(web.getresponse().read())
        st["online"] = status["connections"]["online"]
        for k, v in status.get("history", {}).items():
            st["history_" + k] = v
        for name, ps in pids.items():
            st["ticks_" + name] = ticks(ps)
        for name, m in marks.items():
            st["marked_" + name] = m.count()
        keys = (a.keys.split(",") + ["ticks_" + n for n in pids]
                + ["marked_" + n for n in marks]) if a.keys else sorted(st)
        print("t=%.4f " % t + " ".join("%s=%d" % (k, st.get(k, 0)) for k in keys),
              flush=True)
        if goals and all(st.get(k, 0) >= v if op == ">=" else st.get(k, 0) <= v
                         for k, op, v in goals):
            print("done=%.4f" % t, flush=True)
            return
        if t > end:
            print("timeout=%.4f" % t, flush=True)
            return
        time.sleep(max(0, a.interval / 1000 - (time.time() - t)))


if __name__ == "__main__":
    main()
