# Copyright 2026 GSE contributors
# Distributed under the terms of the GNU General Public License v3

EAPI=8

DESCRIPTION="Gentoo Stateless Environment: build, sign and publish images for lab machines"
HOMEPAGE="https://example.invalid/gse"
SRC_URI="https://example.invalid/gse/archive/v${PV}.tar.gz -> ${P}.tar.gz"

LICENSE="GPL-3+"
SLOT="0"
KEYWORDS="~amd64"
# The concept document's USE flags: without them gse ignores its distcc and
# ccache options (gse/features.py reads /usr/lib64/gse/features).
IUSE="distcc ccache"

RDEPEND="
	>=dev-lang/python-3.12
	>=app-admin/ansible-core-2.19
	>=dev-python/ansible-runner-2.4
	>=dev-python/jinja2-3.1
	>=dev-python/pyyaml-6
	>=dev-python/passlib-1.7.4
	>=dev-python/paramiko-3
	app-arch/zstd
	app-crypt/gnupg
	sys-kernel/dracut
"

# Python sources, YAML and shell: nothing to compile.
src_compile() {
	:
}

src_install() {
	# The gse.stateless collection, where Ansible looks system-wide (and
	# where gse/layout.py finds it).
	local collection=/usr/share/ansible/collections/ansible_collections/gse/stateless
	insinto "${collection}"
	doins -r galaxy.yml README.md ansible.cfg meta plugins roles playbooks inventories docs

	# The controller's dracut modules: in the collection for
	# gse --build-controller, and in dracut's modules.d (their check()
	# returns 255: dracut takes them only when asked for).
	doins -r controller_dracut
	insinto /usr/lib/dracut/modules.d
	doins -r controller_dracut/[0-9][0-9]gse-*

	# The installed config.d defaults (the concept document's path) and the
	# features the USE flags enable.
	insinto /usr/lib64/gse
	doins -r config.d
	{
		use distcc && echo distcc
		use ccache && echo ccache
	} > "${T}"/features
	doins "${T}"/features
	keepdir /etc/gse/config.d
	# The concept document's "$GSE/config.d/controller/modules" (man 1 gse:
	# gse --build-controller=/usr/lib64/gse/config.d/controller/modules).
	dosym -r "${collection}"/controller_dracut /usr/lib64/gse/config.d/controller/modules

	# The command and its Python package.
	insinto /usr/lib/gse/python
	doins -r gse
	dobin "${FILESDIR}"/gse

	doman man/gse.1 man/gse.5
	dodoc README.md
}
