"""The plugin manager: entry points loaded one by one, broken plugins isolated, strict mode, selection."""

from __future__ import annotations

import pytest

from microrestore.errors import InputError, PluginError
from microrestore.plugins import Method, get_host, get_registry
from microrestore.plugins.manager import PluginHost

BUILTIN = {"care", "nl-means", "richardson-lucy"}

GOOD = """
from microrestore import hookimpl
from microrestore.plugins import Method

@hookimpl
def register_methods(register):
    register(Method(name="good-method", task="deblur", summary="a good one", load=lambda m, o: None,
                    needs_model=False))
"""

MISSPELLED = """
from microrestore import hookimpl

@hookimpl
def register_method(register):  # not a hook: check_pending must catch it
    pass
"""

RAISES_ON_IMPORT = "raise ImportError('needs a library that is not installed')\n"

RAISES_IN_HOOK = """
from microrestore import hookimpl

@hookimpl
def register_methods(register):
    raise RuntimeError("boom")
"""

CLASH = """
from microrestore import hookimpl
from microrestore.plugins import Method

@hookimpl
def register_methods(register):
    register(Method(name="care", task="denoise", summary="x", load=lambda m, o: None))
"""


def test_builtin_methods_come_from_entry_points():
    host = get_host()
    assert BUILTIN <= set(host.plugins)
    methods = get_registry().methods
    for name in BUILTIN:
        assert name in methods
        assert methods[name].plugin == name
        assert methods[name].plugin_version


def test_broken_import_gives_one_warning_and_the_rest_works(install_plugin, capsys):
    install_plugin("broken-plugin", "9.9", {"broken": "mr_broken"}, {"mr_broken": RAISES_ON_IMPORT})
    host = get_host()
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "broken" in line]
    assert len(warnings) == 1
    assert "broken 9.9" in warnings[0] and "ImportError" in warnings[0]
    assert host.plugins["broken"].error
    assert "care" in get_registry().methods


def test_misspelled_hook_fails_loudly(install_plugin, capsys):
    install_plugin("typo-plugin", "0.1", {"typo": "mr_typo"}, {"mr_typo": MISSPELLED})
    host = get_host()
    assert "register_method" in capsys.readouterr().err
    assert host.plugins["typo"].error and "invalid" in host.plugins["typo"].error


def test_exception_inside_hook_is_attributed(install_plugin, capsys):
    install_plugin("raiser", "1.0", {"raiser": "mr_raiser"}, {"mr_raiser": RAISES_IN_HOOK})
    get_host()
    err = capsys.readouterr().err
    assert "plugin raiser 1.0 failed to register: RuntimeError: boom" in err


def test_name_clash_is_refused_with_both_plugin_names(install_plugin, capsys):
    install_plugin("clash", "1.0", {"zz-clash": "mr_clash"}, {"mr_clash": CLASH})
    get_host()
    err = capsys.readouterr().err
    assert "already registered by care" in err
    assert get_registry().methods["care"].plugin == "care"


def test_strict_mode_turns_warnings_into_errors(install_plugin, monkeypatch):
    install_plugin("broken-plugin", "9.9", {"broken": "mr_broken"}, {"mr_broken": RAISES_ON_IMPORT})
    monkeypatch.setenv("MICRORESTORE_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match=r"broken 9\.9"):
        get_host()


def test_load_plugins_env_selects(monkeypatch):
    monkeypatch.setenv("MICRORESTORE_LOAD_PLUGINS", "care")
    assert set(get_host().plugins) == {"care"}


def test_load_plugins_empty_loads_none(monkeypatch):
    monkeypatch.setenv("MICRORESTORE_LOAD_PLUGINS", "")
    assert get_host().plugins == {}
    with pytest.raises(InputError, match="unknown method"):
        get_registry().method("care")


def test_register_plugin_object_directly_and_trace(monkeypatch, capsys):
    monkeypatch.setenv("MICRORESTORE_TRACE_PLUGINS", "1")
    host = PluginHost()

    class Inline:
        from microrestore import hookimpl

        @hookimpl
        def register_methods(self, register):
            register(Method(name="inline", task="sim", summary="s", load=lambda m, o: None, needs_model=False))

    assert host.add_plugin(Inline(), "inline")
    assert host.registry.methods["inline"].plugin == "inline"
    assert "[plugins] register_methods" in capsys.readouterr().err


def test_bad_task_is_refused():
    with pytest.raises(PluginError, match="task"):
        Method(name="x", task="segment", summary="", load=lambda m, o: None)  # type: ignore[arg-type]


def test_unknown_method_lists_known():
    with pytest.raises(InputError, match=r"known methods: .*care"):
        get_registry().method("nope")


def test_wrong_task_for_command():
    with pytest.raises(InputError, match="deblur method"):
        get_registry().method("richardson-lucy", "denoise")
