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

# No "from __future__ import annotations": string annotations make dataclass
# look its module up in sys.modules, and the gse command and the tests load
# this file by path.
from dataclasses import dataclass


@dataclass(frozen=True)
class SubPart:
    """A sub-part hook: one task file of its part's role.

    ``tasks`` is the role's task file that holds the sub-part's work (the
    generated ``tasks/main.yml`` includes it, tagged with the part and the
    sub-part).  ``when`` is the condition under which that file is included
    at all: a sub-part whose question is answered no, or which has nothing to
    do, is not included, so that ``-q`` announces only what runs.  The
    question (with its variable and default answer) and what ``--enforce``
    forces are the rows of docs/build.md.
    """

    hook: str
    title: str
    phase: str          # the quiet-mode line, printed as the sub-part starts
    tasks: str          # the task file in roles/<role>/tasks/
    runs: str           # what runs (docs/build.md)
    when: str = ""      # Jinja condition of the include ("" = always)
    question: str = ""  # the question the hook asks ("" = none)
    variable: str = ""  # the variable that answers it
    default: str = ""   # its documented default answer
    reason: str = ""    # why the default is what it is
    enforce: str = ""   # what --enforce forces ("" = nothing)


@dataclass(frozen=True)
class Part:
    """A part of the build sequence: one role, run in one stage."""

    hook: str
    role: str
    stage: str
    chroot: bool        # stage B: runs inside the new system
    title: str
    phase: str
    subs: tuple

    @property
    def letter(self):
        """The part's letter, A to L."""
        return self.hook[-1].upper()


def _enforced(hook):
    return "(gse_enforce | gse.stateless.enforced('%s', gse_lawful_good))" % hook


PARTS = (
    Part("gparta", "fundamentals", "A", False, "Fundamentals", "Preparing the base system", (
        SubPart("gseed", "Locate or create the Portage snapshot; fetch and verify the stage3 (precomp)",
                "Fetching the stage3 and the Portage snapshot", "seed.yml",
                "precomp: `gse.stateless.stage3` fetches `latest-stage3-<variant>.txt` and the tarball "
                "(resuming), verifies the clearsigned pointer, the `.asc`, the signed DIGESTS and `.sha256`; "
                "catalyst: first the ebuild repository (`gse.stateless.catalyst_repo`: `gse_catalyst_repo_url` "
                "fetched into a quarantine, its commit or tag verified against `gse_catalyst_repo_keyring`, "
                "refused with nothing written, the verified commit returned); when `<storedir>/builds/` holds "
                "no seed (`gse_catalyst_seed`), the same fetch and verification as precomp, the verified "
                "tarball linked as the seed; then the snapshot (`catalyst -s <commit>`)",
                enforce="download / snapshot again"),
        SubPart("gcat", "Build the stages with catalyst", "Building the stages with catalyst", "catalyst.yml",
                "catalyst stage1–3 (`gse.stateless.catalyst`) from the verified commit, each stage with its "
                "`pkgcache_path` under `gse_catalyst_pkgcache_dir`, skipped when the products exist",
                when="gse_base == 'catalyst'",
                enforce="purge (`catalyst -p`) and rebuild"),
        SubPart("gextr", "Extract the stage3 into $CDISTDIR/workdir-<base>", "Extracting tarball", "extract.yml",
                "extract into `$CDISTDIR/workdir-<base>` (`gse.stateless.unpack`: into `.partial`, renamed "
                "when complete; nothing done when the marker matches)",
                enforce="extract again (refused while mounted)"),
    )),
    Part("gpartb", "chroot_prepare", "A", False, "Preparing to enter the new system", "Preparing the chroot", (
        SubPart("gmount", "Mount proc, sys, dev, dev/pts, run, the repositories and distfiles",
                "Mounting the chroot filesystems", "mount.yml",
                "proc, sys (rslave), dev (rslave), a private `/run`, repositories (read-only unless a sync "
                "needs them) and distfiles; a guard releases them when the run ends for any reason"),
        SubPart("ginject", "Copy the files named in inject-custom into the chroot", "Injecting custom files",
                "inject.yml", "`/etc/resolv.conf` and the `inject-custom` files, copied through the chroot"),
        SubPart("genv", "Write the environment of stage B (make.conf, distcc, ccache)",
                "Writing the build environment", "env.yml",
                "make.conf (`MAKEOPTS`), `FEATURES` distcc/ccache added or taken out, "
                "`CCACHE_DIR`/`CCACHE_SIZE`, `/etc/distcc/hosts`"),
    )),
    Part("gpartc", "portage", "B", True, "Syncing Portage", "Updating Portage", (
        SubPart("gupdate", "Sync the repositories (emerge --sync, emerge-webrsync or none)", "Updating Portage",
                "sync.yml", "`emerge --sync`, `emerge-webrsync` or nothing (`gse_sync_method`)"),
        SubPart("geix", "Install eix and build its cache", "Installing eix", "eix.yml",
                "emerge eix, `eix-update`; skipped while Portage's state (installed packages, @selected, "
                "`/etc/portage`, the repositories after the sync) is what the last completed `gdeselect` left "
                "(`<workdir>.portage-state.json`): the round trip would end where it started",
                enforce="install eix and build its cache anyway"),
        SubPart("gprofile", "Create and select the GSE profile", "Selecting the GSE profile", "profile.yml",
                "the GSE profile repository (`gse_profile_*`) and `make.profile` pointing at it"),
        SubPart("gapply", "Apply the custom USE flags and emerge the changes", "Applying USE flags", "apply.yml",
                "`package.use`, `package.accept_keywords`; `emerge -uDN @world` when they changed",
                enforce="emerge `-uDN @world` anyway"),
    )),
    Part("gpartd", "rebuild", "B", True, "Rebuilding the system", "Rebuilding the system", (
        SubPart("grebuild", "emerge -eq @system (asked when the base is precomp)", "Rebuilding @system",
                "rebuild.yml", "`emerge -eq @system`",
                when="gse_base == 'precomp' and (gse_rebuild_world or %s)" % _enforced("grebuild"),
                question="rebuild @system? (asked for precomp only)", variable="gse_rebuild_world",
                default="no", reason="release engineering built the stage3 with catalyst from the same profile",
                enforce="yes"),
    )),
    Part("gparte", "configure", "B", True, "Configuration", "Configuring the system", (
        SubPart("glocale", "Locales", "Generating locales", "locale.yml",
                "locale.gen + locale-gen + `/etc/env.d/02locale`"),
        SubPart("gtime", "Timezone", "Setting the timezone", "time.yml",
                "`/etc/localtime` → zoneinfo and `/etc/timezone`"),
        SubPart("gfont", "Console font and keymap", "Setting the console font and keymap", "console.yml",
                "consolefont and keymaps"),
        SubPart("gfstab", "fstab entries", "Writing fstab", "fstab.yml", "fstab"),
        SubPart("gssh", "SSH public keys", "Installing SSH keys", "ssh.yml", "authorized_keys"),
        SubPart("gusers", "Users and passwords", "Creating users", "users.yml",
                "users (passwords hashed with passlib, kept when they match, a new hash salted from the "
                "password, the user and the signing key so that fresh builds agree; never logged)"),
        SubPart("getc", "Other files under /etc", "Writing /etc files", "etc.yml", "other `/etc` files"),
    )),
    Part("gpartf", "essentials", "B", True, "Emerge essentials", "Emerging packages", (
        SubPart("gess", "Essential packages", "Emerging essential packages", "essentials.yml",
                "essential packages (`--noreplace`); kernel/initramfs/boot loader tools when asked"),
        SubPart("gpkg", "Requested user packages", "Emerging user packages", "packages.yml",
                "requested packages (`--noreplace`)"),
    )),
    Part("gpartg", "runlevels", "B", True, "Runlevels", "Updating runlevels", (
        SubPart("grunlevel", "rc-update loop over the configured services", "Updating runlevels", "runlevels.yml",
                "one `rc-update add <service> <runlevel>` per entry, the runlevel always named; the "
                "`gse-health` service the controller reads"),
    )),
    Part("gparth", "kernel", "B", True, "Kernel", "Building the kernel", (
        SubPart("gkconfig", "Extra kernel configuration: menuconfig at the terminal, before genkernel builds",
                "Configuring the kernel", "menuconfig.yml",
                "`gse_kernel_config` (when given) copied to `<gse_kernel_sources>/.config`, then the run stops "
                "for `gse`, which opens `make menuconfig` there in the chroot (the failure loop's shell "
                "machinery) and re-enters at `gker`; a playbook run without `gse` ends here with a message "
                "instead of waiting",
                when="gse_kernel_menuconfig and gse_kernel_build and gse_kernel_path | length == 0 "
                     "and not %s" % _enforced("gker"),
                question="extra kernel configuration (menuconfig)?", variable="gse_kernel_menuconfig",
                default="no", reason="it needs a person at the terminal; with --enforce=gker genkernel builds "
                "its general modular kernel, as the concept document says"),
        SubPart("gker", "Build a kernel with genkernel, or install --kernel=PATH", "Building the kernel",
                "kernel.yml", "install `--kernel=PATH`, or genkernel",
                when="gse_kernel_path | length > 0 or gse_kernel_build or %s" % _enforced("gker"),
                question="build a kernel?", variable="gse_kernel_build", default="no",
                reason="clients boot the controller's kernel", enforce="build"),
    )),
    Part("gparti", "initramfs", "B", True, "Initramfs", "Building the initramfs", (
        SubPart("ginitrd", "Build an initramfs with dracut or genkernel, or install --initrd=PATH",
                "Building the initramfs", "initramfs.yml", "install `--initrd=PATH`, or dracut/genkernel",
                when="gse_initrd_path | length > 0 or gse_initramfs_build or %s" % _enforced("ginitrd"),
                question="build an initramfs?", variable="gse_initramfs_build", default="no",
                reason="clients boot the controller's initramfs", enforce="build"),
    )),
    Part("gpartj", "chroot_cleanup", "B", True, "Chroot cleanup", "Removing build-only packages", (
        SubPart("gdeselect", "Deselect build-only tools and depclean", "Removing build-only packages",
                "deselect.yml", "`emerge --deselect` the build-only tools, `emerge --depclean`, then record "
                "Portage's state beside the work directory; skipped while the state and "
                "`gse_build_only_packages`/`gse_depclean` are what that record says",
                enforce="deselect and depclean anyway"),
    )),
    Part("gpartk", "archive", "C", False, "Cleanup and archive", "Archiving and signing", (
        SubPart("gclean", "Leave the chroot, release the mounts, clean /var, /tmp and /usr/share entries",
                "Cleaning up", "clean.yml",
                "release every mount, then remove the `gse_clean_entries` inside the work directory (refused "
                "while anything is mounted; never follows a symlink out of the root)"),
        SubPart("gminimal", "Leave out the --build-minimal entries", "Removing --build-minimal entries",
                "minimal.yml",
                "with `--build-minimal`, leave `gse_minimal_entries` out of the tarball (the work directory "
                "keeps them)",
                when="gse_build_minimal"),
        SubPart("garchive", "Pack the system as a tarball with SHA512SUMS", "Packing the tarball", "archive.yml",
                "clamp the build times recorded in Portage's package database and `/etc/shadow` to "
                "SOURCE_DATE_EPOCH; `tar --numeric-owner --xattrs --acls` piped to zstd (default) or xz, SHA-512 "
                "computed on the way; the casync chunk index of the tarball's tree; the casync blob index of the "
                "tarball (`<tarball>.caibx`, SHA-256 ids of 1 to 16 MiB byte ranges); `build-report.json`, "
                "`SHA512SUMS`. An unchanged root takes over the last tarball, its signature and its index"),
        SubPart("gsign", "Sign the tarball and its digests", "Signing the tarball", "sign.yml",
                "detached armored OpenPGP signatures of the tarball and `SHA512SUMS`"),
    )),
    Part("gpartl", "publish", "C", False, "Mark for distribution", "Publishing", (
        SubPart("gmark", "Publish the image and, when marked default, move the version pointer",
                "Publishing the image", "mark.yml", "publish into the publication tree (`docs/publication.md`)",
                question="mark as default?", variable="gse_mark_default", default="no",
                reason="clients keep their version until an image is marked", enforce="mark as default"),
    )),
)

PART_HOOKS = tuple(p.hook for p in PARTS)
# The parts a rebuild skips when its inputs and root are those the last completed build recorded
# (module_utils/build_inputs.py, the build_record module): everything that changes the root after part A.
UNCHANGED_SKIPS = PART_HOOKS[PART_HOOKS.index("gpartb"):PART_HOOKS.index("gpartj") + 1]
# The sub-part that syncs the repositories.  With a sync configured, a rebuild whose other inputs and root are
# unchanged decides right after it (the build_record module, state=synced) and skips the rest up to part J.
SYNC_HOOK = "gupdate"
SUBPART_HOOKS = tuple(s.hook for p in PARTS for s in p.subs)
ALL_HOOKS = PART_HOOKS + SUBPART_HOOKS
# The part each sub-part belongs to.
PARENT = {s.hook: p.hook for p in PARTS for s in p.subs}
# Hooks whose scripts run inside the chroot (stage B).
CHROOT_HOOKS = frozenset(
    h for p in PARTS if p.chroot for h in (p.hook,) + tuple(s.hook for s in p.subs)
)


def part(hook):
    """The Part of a part hook or of a sub-part hook; KeyError when unknown."""
    hook = PARENT.get(hook, hook)
    for p in PARTS:
        if p.hook == hook:
            return p
    raise KeyError(hook)


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
        if p.hook in out:
            out.update(s.hook for s in p.subs)
    return out


def is_skipped(hook, lawful_good):
    """True when ``hook`` or its part is named by lawful-good: its work is not done.

    The roles read this (``gse.stateless.lawful_good``) besides the tags, so
    that lawful-good given as a variable alone (an AWX survey answer, which
    cannot set a job's skip tags) skips the same work as ``--skip-tags``.
    """
    skipped = expand(lawful_good)
    return hook in skipped or PARENT.get(hook) in skipped


def skip_condition(hook):
    """The Jinja condition under which a role includes ``hook``'s task file: not skipped by lawful-good."""
    return "not (gse_lawful_good | gse.stateless.lawful_good('%s'))" % hook


def is_enforced(hook, enforce, lawful_good=()):
    """True when ``hook`` (or its part) is enforced and not also skipped by lawful-good."""
    skipped = expand(lawful_good)
    if hook in skipped or PARENT.get(hook) in skipped:
        return False
    return hook in expand(enforce)
