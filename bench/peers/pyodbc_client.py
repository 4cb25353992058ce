"""pyodbc client for `cargo xtask bench`: connect + SELECT 1 + close in a loop through the same driver.

The access token goes in as pre-connect attribute 1256 (SQL_COPT_SS_ACCESS_TOKEN), the way azure-identity users
do it: a little-endian u32 byte count followed by the token in UTF-16-LE. Prints one JSON line.
"""
import json
import os
import struct
import time

import pyodbc

SQL_COPT_SS_ACCESS_TOKEN = 1256


def main():
    connstr = os.environ["BENCH_CONNSTR"]
    token = os.environ["BENCH_TOKEN"].encode("utf-16-le")
    attrs = {SQL_COPT_SS_ACCESS_TOKEN: struct.pack(f"<I{len(token)}s", len(token), token)}
    n = int(os.environ["BENCH_N"])
    warmup = int(os.environ["BENCH_WARMUP"])
    # The driver manager's pooling would skip logins (and ignores attribute 1256): off, as in the Rust clients.
    pyodbc.pooling = False
    out = {"samples_ns": [], "connects": 0, "failures": 0, "first_error": None,
           "version": pyodbc.version, "wall_ns": 0}
    started = time.perf_counter_ns()
    for i in range(warmup + n):
        t = time.perf_counter_ns()
        try:
            conn = pyodbc.connect(connstr, attrs_before=attrs)
            value = conn.cursor().execute("SELECT 1").fetchone()[0]
            conn.close()
            if value != 1:
                raise RuntimeError(f"SELECT 1 returned {value!r}")
            took = time.perf_counter_ns() - t
            if i >= warmup:
                out["samples_ns"].append(took)
        except Exception as e:  # counted and reported, like the Rust clients
            out["failures"] += 1
            if out["first_error"] is None:
                out["first_error"] = str(e)
        out["connects"] += 1
    out["wall_ns"] = time.perf_counter_ns() - started
    print(json.dumps(out))


if __name__ == "__main__":
    main()
