from goalpost.core.warehouse.migrations import available, current_version


def test_database_is_migrated(conn):
    assert current_version(conn) == max(version for version, _, _ in available())
