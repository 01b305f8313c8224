import pytest

from edlnet.registry import Registry, RegistryError


def test_decorator_registers_under_name_attribute_or_function_name():
    reg: Registry = Registry("widget")

    @reg.decorator()
    def alpha():
        return 1

    @reg.decorator("b", size=3)
    class Beta:
        pass

    class Gamma:
        name = "gamma-x"

    reg.decorator()(Gamma)
    assert reg.names() == ["alpha", "b", "gamma-x"]
    assert reg.get("b") is Beta and Beta.size == 3
    assert "alpha" in reg and len(reg) == 3


def test_unknown_and_duplicate_names_are_errors_that_name_the_choices():
    reg: Registry = Registry("widget")
    reg.add("one", object())
    with pytest.raises(RegistryError, match="unknown widget 'two'; registered: one"):
        reg.get("two")
    with pytest.raises(RegistryError, match="registered twice"):
        reg.add("one", object())


def test_modules_are_imported_on_first_lookup_only():
    reg: Registry = Registry("widget", modules=("json",))
    assert not reg._loaded
    reg.names()
    assert reg._loaded


def test_package_modules_are_found_without_being_listed():
    from edlnet.attacks.registry import ATTACKS
    from edlnet.registry import package_modules

    modules = package_modules("edlnet.attacks")
    assert "edlnet.attacks.pgd" in modules and not any(m.rpartition(".")[2].startswith("_") for m in modules)
    assert {"pgd", "fgsm", "surrogate-pgd", "square", "transfer"} <= set(ATTACKS.names())
    assert package_modules(None) == []
