import pytest

from reconciler.units import human_size, libvirt_size, parse_size


@pytest.mark.parametrize("text,expected", [
    (1024, 1024), ("512MiB", 512 * 1024**2), ("1GiB", 1024**3), ("20G", 20 * 1024**3),
    ("1000KB", 1_000_000), ("7", 7), (" 2 TiB ", 2 * 1024**4),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["12 parsecs", "-1", -5, True, "MiB", 1.5])
def test_parse_size_rejects(bad):
    with pytest.raises(ValueError):
        parse_size(bad)


def test_libvirt_units_and_display():
    assert libvirt_size("262144", "KiB") == 256 * 1024**2
    assert libvirt_size("1", None) == 1024          # libvirt's default unit is KiB
    assert human_size(768 * 1024**2) == "768MiB"
    assert human_size(1000) == "1000B"
