"""Build-time features of the installation (the ebuild's USE flags distcc and ccache).

The ebuild writes the enabled flags, one per line, to /usr/lib64/gse/features
(GSE_FEATURES_FILE points elsewhere).  Without that file (a checkout or a pip
install) every feature is available.
"""
import os

ALL = ("distcc", "ccache")


def enabled():
    path = os.environ.get("GSE_FEATURES_FILE", "/usr/lib64/gse/features")
    try:
        with open(path, encoding="utf-8") as f:
            words = {w.strip() for w in f.read().split()}
    except FileNotFoundError:
        return set(ALL)
    except OSError:
        return set()
    return {w for w in words if w in ALL}
