"""The HTTP/2 timeouts on the nghttp2 engine (`http2.engine = "nghttp2"`, issue 27): a stream
whose body is too slow gets 408 and RST_STREAM alone, streams held by a shut flow-control window
are reset (CANCEL) after the send timeout, and a client that reads nothing is closed. The tests
are the nio engine's own (test_slow_bodies.py, test_http2_limits.py), run here on servers that
choose the nghttp2 engine. The sweep's arithmetic is tested without sockets in
HTTP2SessionSendClockTests."""
import pytest

from http2_site import site  # noqa: F401 (fixture)
from test_http2_limits import STALL_APP
from test_http2_limits import test_a_client_that_reads_nothing_is_closed_after_the_send_timeout as reads_nothing
from test_http2_limits import test_streams_stalled_by_flow_control_hold_no_descriptors_and_are_reset as stalled
from test_slow_bodies import SLOW_BODY_APP
from test_slow_bodies import test_http2_trickled_body_408_on_its_stream_alone as trickled
from tls_certs import start_tls

ENGINE = 'moonwire.options{ http2 = { engine = "nghttp2" } }\n'


@pytest.fixture(scope="module")
def slow_body_server(moonwire_module):
    return moonwire_module(main=ENGINE + SLOW_BODY_APP, threads=1)


@pytest.fixture(scope="module")
def stall_server(moonwire_module, certs, site):  # noqa: F811 (site)
    return start_tls(moonwire_module, certs, ENGINE + STALL_APP, www=site, threads=2)


def test_trickled_body_408_on_its_stream_alone(slow_body_server):
    trickled(slow_body_server)


@pytest.mark.parametrize("kind", ["tls", "h2c"])
def test_streams_stalled_by_flow_control_are_reset(stall_server, certs, kind):
    stalled(stall_server, certs, kind)


def test_a_client_that_reads_nothing_is_closed(stall_server, certs):
    reads_nothing(stall_server, certs)
