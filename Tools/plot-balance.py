#!/usr/bin/env python3
"""Plots `qgbench balance`'s CSV: the split position with the hot spot's
centre, each server's time, and frame time over the ideal, static against
balanced. Usage: plot-balance.py DATA.csv OUT.png"""
import csv
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

rows = list(csv.DictReader(open(sys.argv[1])))
frame = [int(r["frame"]) for r in rows]
col = lambda name: [float(r[name]) for r in rows]

fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
top.plot(frame, col("split_px"), label="split (balanced)")
top.plot(frame, col("hot_spot_px"), "--", label="hot spot centre")
top.axhline(480, color="grey", lw=0.8, label="static split")
top.set_ylabel("x (pixels of 960)")
top.legend(loc="upper right")
middle.plot(frame, col("server0_ms"), label="server 0 (left)")
middle.plot(frame, col("server1_ms"), label="server 1 (right)")
middle.set_ylabel("time on its part (ms)")
middle.legend(loc="upper right")
bottom.plot(frame, col("static_over_ideal"), label="static even split")
bottom.plot(frame, col("balanced_over_ideal"), label="balanced")
bottom.axhline(1.10, color="grey", lw=0.8, ls=":", label="goal 1.10")
bottom.set_ylabel("frame time / ideal")
bottom.set_xlabel("frame")
bottom.legend(loc="upper right")
fig.suptitle("QueueGraph compound queue, 2 servers: load balancing a moving hot spot")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=90)
