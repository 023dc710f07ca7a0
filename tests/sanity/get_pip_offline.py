"""Stand-in for pip's get-pip.py bootstrap script, for ansible-test.

ansible-test bootstraps pip in its sanity virtual environments by downloading
get-pip.py from its own file host, which the build machines cannot reach.  It
takes a cached copy from ~/.ansible/test/cache/get_pip_<version>.py instead
when there is one; tests/sanity/run puts this script there.

This script does the same job from what is here: ensurepip installs the pip
bundled with Python, and that pip installs the requested packages (the pip
release ansible-test pins) through the machine's own pip configuration.  It
takes the arguments get-pip.py passes on to ``pip install``.

Why ensurepip runs in a child process: ensurepip.bootstrap() clears every
PIP_* variable and sets PIP_CONFIG_FILE=/dev/null in the environment of the
process that calls it, so a pip started afterwards from that process ignores
every pip configuration file (/etc/pip.conf, the user's, the site's).  The
machine's TLS settings live in those files; ansible-test also strips
REQUESTS_CA_BUNDLE and PIP_CERT from the environment, so such a pip falls back
to its own CA bundle and refuses the machine's HTTPS chain.
"""
import os
import ssl
import subprocess
import sys

# Bundled pip releases older than 24.2 do not consult the system trust store,
# and a Python built outside the distribution (pyenv) may default to its own
# OpenSSL directory: give the virtual environment a site pip.conf that names
# the system's CA bundle, read in addition to the machine's configuration.
for candidate in (os.environ.get("PIP_CERT"), "/etc/ssl/certs/ca-certificates.crt",
                  ssl.get_default_verify_paths().cafile):
    if candidate and os.path.isfile(candidate):
        with open(os.path.join(sys.prefix, "pip.conf"), "w", encoding="utf-8") as fh:
            fh.write("[global]\ncert = %s\n" % candidate)
        break

subprocess.check_call([sys.executable, "-m", "ensurepip"])
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
if args:
    subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)
