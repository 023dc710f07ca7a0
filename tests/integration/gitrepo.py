"""Small ebuild repositories in git, signed or not, for catalyst's snapshot.

``commit`` writes files into a work tree and commits them, signed with the
given key of a GnuPG home (``gpg.program`` is the host's gpg), or unsigned
when no key is given.  The fixture serves the repository over file://.
"""
import os
import subprocess

PROFILE = "default/linux/amd64"


def git(repo, *args, env=None):
    e = dict(os.environ, GIT_AUTHOR_NAME="GSE Test", GIT_AUTHOR_EMAIL="releng@gse.test",
             GIT_COMMITTER_NAME="GSE Test", GIT_COMMITTER_EMAIL="releng@gse.test",
             GIT_CONFIG_NOSYSTEM="1", HOME=repo, LC_ALL="C", **(env or {}))
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True,
                          env=e).stdout.strip()


def ebuild_repo_files(name="gentoo", profile=PROFILE, extra=None):
    """The least a snapshot needs: profiles/repo_name and the profile directory."""
    files = {
        "profiles/repo_name": name + "\n",
        "metadata/layout.conf": "masters =\nthin-manifests = true\n",
        "profiles/%s/make.defaults" % profile: 'ARCH="amd64"\nCHOST="x86_64-pc-linux-gnu"\n',
        "profiles/%s/eapi" % profile: "8\n",
    }
    files.update(extra or {})
    return files


def commit(repo, files, gnupghome=None, key=None, message="Snapshot", tag=None):
    """Commit ``files`` ({path: text}) in the work tree ``repo`` (created when missing); return the commit id.

    With ``tag``, an annotated tag of that name is made, signed like the commit."""
    if not os.path.isdir(os.path.join(repo, ".git")):
        os.makedirs(repo, exist_ok=True)
        git(repo, "init", "--quiet", "--initial-branch=stable")
    for rel, text in files.items():
        path = os.path.join(repo, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    git(repo, "add", "-A")
    env = {"GNUPGHOME": gnupghome} if gnupghome else {}
    sign = ["-c", "gpg.program=gpg", "-c", "user.signingkey=" + key] if key else []
    git(repo, *sign, "commit", "--quiet", "--allow-empty", "-m", message, *(["-S"] if key else []), env=env)
    if tag:
        git(repo, *sign, "tag", *(["-s"] if key else ["-a"]), "-m", tag, tag, env=env)
    return git(repo, "rev-parse", "HEAD")
