"""The `pounce` command's own process stays light.

It parses the settings, binds the sockets and execs the master (see
src/pounce/_master.py), so anything it imports beyond that is start-up time
thrown away on every start, reload of the command, and test server: asyncio
and ssl (with the supervisor, the worker runner and the C core's Task
lookup) used to cost ~40 % of it. Here the command runs up to its exec,
which is replaced by a check of what got imported.
"""

from __future__ import annotations

import json
import subprocess

from tests.server import ROOT, VENV_BIN

PROBE = r"""
import json, os, sys
def fake_execve(path, argv, env):
    print(json.dumps({"argv": argv[1:5], "modules": sorted(sys.modules)}))
    sys.stdout.flush()
    os._exit(0)
os.execve = fake_execve
sys.argv = ["pounce", "bench.apps.plaintext:app", "--port", "0"]
from pounce.__main__ import main
main()
"""


def test_the_command_execs_the_master_without_asyncio_or_ssl():
    out = subprocess.run([str(VENV_BIN / "python"), "-c", PROBE], cwd=ROOT, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert "pounce._master" in seen["argv"], seen["argv"]  # it got as far as the exec
    heavy = [m for m in ("asyncio", "ssl", "uvloop", "pounce._supervisor", "pounce._runner")
             if m in seen["modules"]]
    assert heavy == [], f"the pounce command imported {heavy} before exec'ing the master"
