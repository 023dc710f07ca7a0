"""Stand-in for pip's get-pip.py bootstrap script, for ansible-test.

ansible-test bootstraps pip in its sanity virtual environments by downloading
get-pip.py from its own file host, which the build machines cannot reach, and
it runs pip with a stripped environment, so the machine's TLS settings
(PIP_CERT and friends) do not reach it.  This script does the same job from
what is here: it gives the virtual environment a site pip.conf that trusts
the system's CA bundle, lets ensurepip install the pip bundled with Python, and
has that pip install the requested packages from the machine's configured
package index.  It takes the arguments get-pip.py passes on to ``pip install``.
"""
import ensurepip
import os
import ssl
import subprocess
import sys

# The system's bundle first: a Python built outside the distribution (pyenv)
# defaults to its own OpenSSL directory, which holds none of the machine's CAs.
for candidate in (os.environ.get("PIP_CERT"), "/etc/ssl/certs/ca-certificates.crt",
                  ssl.get_default_verify_paths().cafile):
    if candidate and os.path.isfile(candidate):
        with open(os.path.join(sys.prefix, "pip.conf"), "w", encoding="utf-8") as fh:
            fh.write("[global]\ncert = %s\n" % candidate)
        break

ensurepip.bootstrap()
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
if args:
    subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)
