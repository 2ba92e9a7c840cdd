"""zope.interface's spellings that ported Twisted code uses: providedBy, implementedBy, @implementer."""

from __future__ import annotations

import pytest

from tapster.core.service import (
    Application,
    IProcess,
    IService,
    IServiceCollection,
    MultiService,
    Process,
    Service,
    implementer,
)


def test_provided_by_tapsters_own_classes() -> None:
    app = Application("app")
    assert IService.providedBy(Service()) and IService.providedBy(MultiService()) and IService.providedBy(app)
    assert IServiceCollection.providedBy(MultiService()) and IServiceCollection.providedBy(app)
    assert not IServiceCollection.providedBy(Service())
    assert IProcess.providedBy(app) and IProcess.providedBy(Process())
    assert not IService.providedBy(object()) and not IService.providedBy("a string")


def test_implemented_by_classes() -> None:
    assert IService.implementedBy(Service) and IServiceCollection.implementedBy(MultiService)
    assert not IServiceCollection.implementedBy(Service) and not IService.implementedBy(int)
    with pytest.raises(TypeError, match="takes a class"):
        IService.implementedBy(Service())  # type: ignore[arg-type]


def test_implementer_declares_for_a_class_outside_tapsters_bases() -> None:
    class Bare:
        """Twisted code sometimes declares an interface it implements only in part, or by delegation."""

    assert not IService.providedBy(Bare())

    @implementer(IService, IProcess)
    class Declared:
        pass

    assert IService.providedBy(Declared()) and IProcess.providedBy(Declared())
    assert IService.implementedBy(Declared) and not IServiceCollection.implementedBy(Declared)
    thing = Declared()
    assert IService(thing) is thing  # adaptation follows the declaration too
    assert Declared.__implemented__ == (IService, IProcess)  # type: ignore[attr-defined]

    @implementer(IServiceCollection)
    class More(Declared):
        pass

    assert More.__implemented__ == (IService, IProcess, IServiceCollection)  # type: ignore[attr-defined]
    assert IServiceCollection.providedBy(More()) and IService.providedBy(More())


def test_implementer_refuses_what_is_not_an_interface() -> None:
    with pytest.raises(TypeError, match="takes interfaces"):
        implementer("IService")  # type: ignore[arg-type]
