"""gse-chunk-gate for this host, built by module-setup.sh's own
gse_build_chunk_gate (as dracut builds it into the initramfs), cached by the
content hash of its source and of that function's file."""
import fcntl
import hashlib
import os
import subprocess

from builds import CACHE, ROOT

MODULE = os.path.join(ROOT, "controller_dracut", "92gse-net")


def gate_path():
    """The path of a gse-chunk-gate built from the tree's source; fails (does
    not skip) when it cannot be built: the tests need a C compiler and
    OpenSSL's headers (.ci/apt-packages.txt)."""
    h = hashlib.sha256()
    for name in ("gse-chunk-gate.c", "module-setup.sh"):
        with open(os.path.join(MODULE, name), "rb") as f:
            h.update(name.encode() + b"\0" + f.read())
    out = os.path.join(CACHE, f"chunk-gate-{h.hexdigest()[:16]}", "gse-chunk-gate")
    if os.path.exists(out):
        return out
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, ".gate-lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(out):
            os.makedirs(os.path.dirname(out), exist_ok=True)
            res = subprocess.run(["bash", "-c", '. "$1"; gse_build_chunk_gate "$2"', "build",
                                  os.path.join(MODULE, "module-setup.sh"), out + ".new"],
                                 capture_output=True, text=True)
            assert res.returncode == 0, "gse-chunk-gate did not build: " + res.stderr
            os.rename(out + ".new", out)
    return out
