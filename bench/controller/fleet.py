"""Fleet check: N concurrent clients (HTTP clients, not VMs) fetch
version.txt, config.txt, the config.d and the image from a server, verify
them as the controller does (gpgv on the pointers, SHA512 and size of the
payloads against the signed pointer), and must all get byte-identical data.

    python bench/controller/fleet.py --url http://127.0.0.1:8080 --keyring gse.gpg [--clients 20]
"""
import argparse
import concurrent.futures
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.request


def fetch(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read()


def verify_pointer(keyring, text):
    """The signed body of a clearsigned pointer as a dict (gpgv's output only)."""
    with tempfile.NamedTemporaryFile(suffix=".txt") as f:
        f.write(text)
        f.flush()
        res = subprocess.run(["gpgv", "--keyring", keyring, "--output", "-", f.name],
                             capture_output=True)
    if res.returncode != 0:
        raise ValueError("pointer signature does not verify")
    return dict(line.split(": ", 1) for line in res.stdout.decode().splitlines() if ": " in line)


def one_client(url, keyring):
    out = {}
    for name in ("version.txt", "config.txt"):
        body = verify_pointer(keyring, fetch(f"{url}/{name}"))
        data = fetch(f"{url}/{body['path']}")
        digest = hashlib.sha512(data).hexdigest()
        if digest != body["sha512"] or len(data) != int(body["size"]):
            raise ValueError(f"{body['path']}: digest or size differs from the signed pointer")
        out[name] = (body["serial"], body["path"], digest)
    return out


def run(url, keyring, clients=20):
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda _: one_client(url, keyring), range(clients)))
    identical = all(r == results[0] for r in results)
    return {"clients": clients, "identical": identical, "result": results[0]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--keyring", required=True)
    p.add_argument("--clients", type=int, default=20)
    a = p.parse_args(argv)
    res = run(a.url, os.path.abspath(a.keyring), a.clients)
    print(json.dumps(res, indent=1))
    return 0 if res["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
