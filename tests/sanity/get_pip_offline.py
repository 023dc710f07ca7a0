"""Stand-in for pip's get-pip.py bootstrap script, for ansible-test.

ansible-test bootstraps pip in its sanity virtual environments by downloading
get-pip.py from its own file host, which the build machines cannot reach.
This script does the same job from what is here: ensurepip installs the pip
bundled with Python, which then installs the requested pip (and any other
packages named) from the machine's configured package index.  It takes the
same arguments get-pip.py passes on to ``pip install``.
"""
import ensurepip
import subprocess
import sys

ensurepip.bootstrap()
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
if args:
    subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)
