"""Fixtures the integration tests share."""
import pytest

from tests.fixture.pytest_plugin import signing_home_copy


@pytest.fixture(scope="module")
def signing(gse_fixture):
    """(GnuPG home, fingerprint): one private copy of the test key for a module's builds."""
    with signing_home_copy(gse_fixture) as home:
        yield home, gse_fixture.fingerprint
