"""Errors, warnings and constants keep the upstream names and hierarchy."""
import xmlrpc.client

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


def test_top_level_names_of_upstream_exist():
    names = ["Conf", "conf", "SAFE_MTYPES", "SAMP_ICON", "SAMP_STATUS_OK", "SAMP_STATUS_WARNING",
             "SAMP_STATUS_ERROR", "SAMPClient", "SAMPClientError", "SAMPHubError", "SAMPHubProxy",
             "SAMPIntegratedClient", "SAMPMsgReplierWrapper", "SAMPProxyError", "SAMPWarning",
             "SAMPXXEServerProxy", "safe_xmlrpc_loads", "accessible_table", "connection",
             "find_client_id", "send_image_to", "send_product_to", "send_spectrum_to",
             "send_table_to"]
    missing = [n for n in names if not hasattr(samp_compat, n)]
    assert missing == []
