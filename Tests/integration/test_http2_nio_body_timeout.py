"""The HTTP/2 body timeout on the nio engine (`http2.engine = "nio"`): a stream whose body is
too slow gets 408 and RST_STREAM alone. The test is test_slow_bodies.py's own, whose servers
use the default engine (nghttp2), run here on a server that chooses nio. The send timeout's
tests run on both engines in test_http2_limits.py; the sweep's arithmetic is tested without
sockets in HTTP2SessionSendClockTests."""
import pytest

from test_slow_bodies import SLOW_BODY_APP
from test_slow_bodies import test_http2_trickled_body_408_on_its_stream_alone as trickled

ENGINE = 'moonwire.options{ http2 = { engine = "nio" } }\n'


@pytest.fixture(scope="module")
def slow_body_server(moonwire_module):
    return moonwire_module(main=ENGINE + SLOW_BODY_APP, threads=1)


def test_trickled_body_408_on_its_stream_alone(slow_body_server):
    trickled(slow_body_server)
