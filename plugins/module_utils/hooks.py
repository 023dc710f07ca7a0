# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The build sequence's hook table: the one place that names parts and sub-parts.

Hook names are public API: they are the arguments of ``--lawful-good``,
``--enforce`` and ``-g``, the Ansible tags of the roles, and the headings of
``man 5 gse``.  Everything that needs them (roles through the ``enforced``
filter, the ``gse`` command, the manual) reads this table; nothing repeats it.

This file imports nothing from Ansible so that the ``gse`` command can load it
on its own.
"""

from __future__ import annotations

# (part hook, role, stage, runs in chroot, title, quiet-mode phase line, sub-part hooks)
# Each sub-part hook is (name, title, quiet-mode phase line): -q prints the
# sub-part's line, numbered with its part, as the sub-part starts.
PARTS = (
    ("gparta", "fundamentals", "A", False, "Fundamentals", "Preparing the base system", (
        ("gseed", "Locate or create the Portage snapshot; fetch and verify the stage3 (precomp)",
         "Fetching the stage3 and the Portage snapshot"),
        ("gcat", "Build the stages with catalyst", "Building the stages with catalyst"),
        ("gextr", "Extract the stage3 into $CDISTDIR/workdir-<base>", "Extracting tarball"),
    )),
    ("gpartb", "chroot_prepare", "A", False, "Preparing to enter the new system", "Preparing the chroot", (
        ("gmount", "Mount proc, sys, dev, dev/pts, run, the repositories and distfiles",
         "Mounting the chroot filesystems"),
        ("ginject", "Copy the files named in inject-custom into the chroot", "Injecting custom files"),
        ("genv", "Write the environment of stage B (make.conf, distcc, ccache)",
         "Writing the build environment"),
    )),
    ("gpartc", "portage", "B", True, "Syncing Portage", "Updating Portage", (
        ("gupdate", "Sync the repositories (emerge --sync, emerge-webrsync or none)", "Updating Portage"),
        ("geix", "Install eix and build its cache", "Installing eix"),
        ("gprofile", "Create and select the GSE profile", "Selecting the GSE profile"),
        ("gapply", "Apply the custom USE flags and emerge the changes", "Applying USE flags"),
    )),
    ("gpartd", "rebuild", "B", True, "Rebuilding the system", "Rebuilding the system", (
        ("grebuild", "emerge -eq @system (asked when the base is precomp)", "Rebuilding @system"),
    )),
    ("gparte", "configure", "B", True, "Configuration", "Configuring the system", (
        ("glocale", "Locales", "Generating locales"),
        ("gtime", "Timezone", "Setting the timezone"),
        ("gfont", "Console font and keymap", "Setting the console font and keymap"),
        ("gfstab", "fstab entries", "Writing fstab"),
        ("gssh", "SSH public keys", "Installing SSH keys"),
        ("gusers", "Users and passwords", "Creating users"),
        ("getc", "Other files under /etc", "Writing /etc files"),
    )),
    ("gpartf", "essentials", "B", True, "Emerge essentials", "Emerging packages", (
        ("gess", "Essential packages", "Emerging essential packages"),
        ("gpkg", "Requested user packages", "Emerging user packages"),
    )),
    ("gpartg", "runlevels", "B", True, "Runlevels", "Updating runlevels", (
        ("grunlevel", "rc-update loop over the configured services", "Updating runlevels"),
    )),
    ("gparth", "kernel", "B", True, "Kernel", "Building the kernel", (
        ("gker", "Build a kernel with genkernel, or install --kernel=PATH", "Building the kernel"),
    )),
    ("gparti", "initramfs", "B", True, "Initramfs", "Building the initramfs", (
        ("ginitrd", "Build an initramfs with dracut or genkernel, or install --initrd=PATH",
         "Building the initramfs"),
    )),
    ("gpartj", "chroot_cleanup", "B", True, "Chroot cleanup", "Removing build-only packages", (
        ("gdeselect", "Deselect build-only tools and depclean", "Removing build-only packages"),
    )),
    ("gpartk", "archive", "C", False, "Cleanup and archive", "Archiving and signing", (
        ("gclean", "Leave the chroot, release the mounts, clean /var, /tmp and /usr/share entries",
         "Cleaning up"),
        ("gminimal", "Leave out the --build-minimal entries", "Removing --build-minimal entries"),
        ("garchive", "Pack the system as a tarball with SHA512SUMS", "Packing the tarball"),
        ("gsign", "Sign the tarball and its digests", "Signing the tarball"),
    )),
    ("gpartl", "publish", "C", False, "Mark for distribution", "Publishing", (
        ("gmark", "Publish the image and, when marked default, move the version pointer",
         "Publishing the image"),
    )),
)

PART_HOOKS = tuple(p[0] for p in PARTS)
SUBPART_HOOKS = tuple(s[0] for p in PARTS for s in p[6])
ALL_HOOKS = PART_HOOKS + SUBPART_HOOKS
# The part each sub-part belongs to.
PARENT = {s[0]: p[0] for p in PARTS for s in p[6]}
# Hooks whose scripts run inside the chroot (stage B).
CHROOT_HOOKS = frozenset(
    h for p in PARTS if p[3] for h in (p[0],) + tuple(s[0] for s in p[6])
)


def expand(hooks):
    """Return the set of hooks covered by ``hooks``: a part hook covers its sub-parts.

    Raises ValueError naming the unknown hooks and listing the valid ones.
    """
    hooks = [h for h in hooks if h]
    unknown = [h for h in hooks if h not in ALL_HOOKS]
    if unknown:
        raise ValueError(
            "unknown hook%s %s; valid hooks are: %s"
            % ("s" if len(unknown) > 1 else "", ", ".join(unknown), ", ".join(ALL_HOOKS))
        )
    out = set(hooks)
    for p in PARTS:
        if p[0] in out:
            out.update(s[0] for s in p[6])
    return out


def is_enforced(hook, enforce, lawful_good=()):
    """True when ``hook`` (or its part) is enforced and not also skipped by lawful-good."""
    skipped = expand(lawful_good)
    if hook in skipped or PARENT.get(hook) in skipped:
        return False
    return hook in expand(enforce)
