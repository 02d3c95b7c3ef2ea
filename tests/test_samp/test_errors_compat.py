"""Errors, warnings and constants keep the upstream names and hierarchy."""
import importlib
import inspect
import types
import warnings
import xmlrpc.client

import pytest

import samp_compat
from samp_compat import constants, errors


def test_errors_all_matches_upstream():
    assert sorted(errors.__all__) == ["SAMPClientError", "SAMPHubError", "SAMPProxyError",
                                      "SAMPWarning"]


def test_samp_warning_is_a_user_warning():
    assert issubclass(errors.SAMPWarning, UserWarning)


def test_hub_and_client_errors_are_exceptions():
    assert issubclass(errors.SAMPHubError, Exception)
    assert issubclass(errors.SAMPClientError, Exception)


def test_proxy_error_is_a_fault_built_from_code_and_text():
    exc = errors.SAMPProxyError(5, "bad key")
    assert isinstance(exc, xmlrpc.client.Fault)
    assert (exc.faultCode, exc.faultString) == (5, "bad key")


def test_timeout_error_is_a_proxy_error_reachable_only_from_errors_module():
    assert issubclass(errors.SAMPProxyTimeoutError, errors.SAMPProxyError)
    assert "SAMPProxyTimeoutError" not in errors.__all__


def test_status_constants_and_profile_version():
    assert (samp_compat.SAMP_STATUS_OK, samp_compat.SAMP_STATUS_WARNING,
            samp_compat.SAMP_STATUS_ERROR) == ("samp.ok", "samp.warning", "samp.error")
    assert constants.__profile_version__ == "1.3"


def test_safe_mtypes_as_upstream():
    assert samp_compat.SAFE_MTYPES == ["samp.app.*", "samp.msg.progress", "table.*", "image.*",
                                       "coord.*", "spectrum.*", "bibcode.*", "voresource.*"]


def test_icon_is_a_png():
    assert samp_compat.SAMP_ICON.startswith(b"\x89PNG\r\n\x1a\n")


def test_conf_defaults_never_use_internet():
    conf = samp_compat.Conf()
    assert conf.use_internet is False
    assert conf.n_retries == 10


def test_conf_set_temp_restores_value():
    with samp_compat.conf.set_temp("n_retries", 3):
        assert samp_compat.conf.n_retries == 3
    assert samp_compat.conf.n_retries == 10


def test_conf_lists_its_settings_like_a_config_namespace(capsys):
    assert list(samp_compat.conf.keys()) == ["use_internet", "n_retries"]
    assert list(samp_compat.conf) == ["use_internet", "n_retries"]
    with samp_compat.conf.set_temp("n_retries", 4):
        assert dict(samp_compat.conf.items()) == {"use_internet": False, "n_retries": 4}
        assert list(samp_compat.conf.values()) == [False, 4]
    samp_compat.conf.help("n_retries")
    assert "n_retries" in capsys.readouterr().out
    with pytest.raises(KeyError):
        samp_compat.conf.help("no_such_setting")


def test_conf_reload_restores_the_default():
    samp_compat.conf.n_retries = 2
    try:
        assert samp_compat.conf.reload("n_retries") == 10
        assert samp_compat.conf.n_retries == 10
    finally:
        samp_compat.conf.reset()


def test_top_level_names_of_upstream_exist():
    names = ["Conf", "conf", "SAFE_MTYPES", "SAMP_ICON", "SAMP_STATUS_OK", "SAMP_STATUS_WARNING",
             "SAMP_STATUS_ERROR", "SAMPClient", "SAMPClientError", "SAMPHubError", "SAMPHubProxy",
             "SAMPIntegratedClient", "SAMPMsgReplierWrapper", "SAMPProxyError", "SAMPWarning",
             "SAMPXXEServerProxy", "safe_xmlrpc_loads", "SAMPHubServer", "WebProfileDialog",
             "accessible_table", "connection",
             "find_client_id", "send_image_to", "send_product_to", "send_spectrum_to",
             "send_table_to"]
    missing = [n for n in names if not hasattr(samp_compat, n)]
    assert missing == []


_SUBMODULES = ["client", "constants", "errors", "hub", "hub_proxy", "integrated_client",
               "lockfile_helpers", "standard_profile", "utils", "web_profile", "hub_script",
               "vo_helpers"]


def _package_names(module, package):
    """Public names of an upstream module that come from the SAMP package itself."""
    names = []
    for name, value in vars(module).items():
        if name.startswith("_") or isinstance(value, types.ModuleType):
            continue
        origin = getattr(value, "__module__", package) if (
            inspect.isclass(value) or inspect.isfunction(value)) else package
        if origin.startswith(package) and not hasattr(value, "read"):  # not open files
            names.append(name)
    return names


@pytest.mark.parametrize("package", ["astropy.samp", "pyvo.samp"])
def test_submodules_have_every_name_of_the_upstream_submodules(package):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pytest.importorskip(package, reason="%s is not installed" % package)
    missing = []
    for sub in _SUBMODULES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                upstream = importlib.import_module("%s.%s" % (package, sub))
            except ImportError:
                continue  # hub_script is astropy's only, vo_helpers pyvo's only
        ours = importlib.import_module("samp_compat.%s" % sub)
        missing += ["%s.%s" % (sub, name) for name in _package_names(upstream, package)
                    if not hasattr(ours, name)]
    assert missing == []
