"""The torch half of bench_pytorch: one /usr/bin/python3 process that stays up for the whole
run (torch is imported once, as in a training program) and times what it is told to, one
command a line on stdin, one answer a line on stdout:

  init PATH            torch.load(PATH) into memory: the state dict every save writes
                       (not timed); answers "ok <tensors> <bytes>"
  save PATH FSYNC      torch.save(state_dict, PATH), then os.fsync of the file when FSYNC is 1
                       (torch.save itself never syncs); answers "ok <seconds>"
  load PATH WO         torch.load(PATH, weights_only=WO == 1), every tensor in memory;
                       answers "ok <seconds>" (dropping the result is not timed)
"""
import os
import sys
import time

import torch


def fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def main():
    state = None
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd == "init":
            state = torch.load(args[0])
            nbytes = sum(t.numel() * t.element_size() for t in state.values())
            print("ok", len(state), nbytes, flush=True)
        elif cmd == "save":
            t0 = time.perf_counter()
            torch.save(state, args[0])
            if args[1] == "1":
                fsync(args[0])
            print("ok %.6f" % (time.perf_counter() - t0), flush=True)
        elif cmd == "load":
            t0 = time.perf_counter()
            back = torch.load(args[0], weights_only=args[1] == "1")
            seconds = time.perf_counter() - t0
            assert len(back) == len(state), (len(back), len(state))
            del back
            print("ok %.6f" % seconds, flush=True)
        else:
            sys.exit("torch_peer: unknown command " + cmd)


if __name__ == "__main__":
    main()
