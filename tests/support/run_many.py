"""Runs a test script once per case inside one Python process.

  run_many.py SCRIPT CASES RESULTS

CASES holds one case per line, its arguments separated by tabs; each runs as `SCRIPT args...`
would run on its own (as __main__, with that sys.argv). RESULTS gets one line per case: its exit
status, a tab, and what it printed, newlines shown as " | ". A test that compares hundreds of
files used to start Python and import torch for each comparison, which was most of its time.
"""
import contextlib
import io
import os
import runpy
import sys
import traceback


def run_case(script, args):
    sys.argv = [script] + args
    out = io.StringIO()
    status = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            runpy.run_path(script, run_name="__main__")
        except SystemExit as e:
            if isinstance(e.code, int):
                status = e.code
            elif e.code is not None:
                print(e.code)
                status = 1
        except BaseException:  # noqa: B902 - a case's crash is its result, not the batch's end
            traceback.print_exc()
            status = 1
    return status, out.getvalue().strip().replace("\n", " | ")


def main():
    script, cases, results = sys.argv[1:4]
    script = os.path.abspath(script)
    # As `python3 SCRIPT` would have it: the script's own folder first on the import path.
    sys.path.insert(0, os.path.dirname(script))
    with open(cases) as f:
        todo = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    # Results go to a file of their own: what libraries print from C (not through sys.stdout)
    # cannot interleave with them.
    with open(results, "w") as r:
        for args in todo:
            status, text = run_case(script, args)
            r.write(f"{status}\t{text}\n")
            r.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
