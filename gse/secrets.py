"""Keep clear-text secrets out of saved time states.

User passwords become SHA-512 crypt hashes (the build uses password_hash
as it is).  Any other clear-text secret refuses the save: it cannot be
hashed and still used.
"""
import re

from passlib.hash import sha512_crypt

from .errors import UsageError

_SECRET_KEY = re.compile(r"(password|passphrase|secret|token)$", re.IGNORECASE)


def hash_user_passwords(data):
    """Return a copy of users.yml data with every ``password`` replaced by ``password_hash``."""
    out = {}
    for key, value in data.items():
        if isinstance(value, list):
            value = [_hash_entry(e) if isinstance(e, dict) else e for e in value]
        out[key] = value
    return out


def _hash_entry(entry):
    entry = dict(entry)
    if "password" in entry:
        entry["password_hash"] = sha512_crypt.hash(entry.pop("password"))
    return entry


def find_clear(value, path=""):
    """Paths of keys that look like clear-text secrets (``*_hash`` and ``*_file`` are fine)."""
    found = []
    if isinstance(value, dict):
        for k, v in value.items():
            here = "%s.%s" % (path, k) if path else str(k)
            if isinstance(k, str) and _SECRET_KEY.search(k) and isinstance(v, str) and v:
                found.append(here)
            else:
                found.extend(find_clear(v, here))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found.extend(find_clear(v, "%s[%d]" % (path, i)))
    return found


def scrub(name, data):
    """Data of one config file fit for a state; raises UsageError on a secret it cannot hide."""
    if name == "users.yml":
        data = hash_user_passwords(data)
    clear = find_clear(data)
    if clear:
        raise UsageError("%s holds a clear-text secret (%s); a time state never stores one: keep it "
                         "in a file outside config.d" % (name, ", ".join(clear)))
    return data
