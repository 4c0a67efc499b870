from services.gateway.limits import DEFAULT_MAX_BODY, closes_connection


def test_a_body_within_the_limit_keeps_the_connection():
    assert not closes_connection([("HOST", "x"), ("CONTENT-LENGTH", str(DEFAULT_MAX_BODY))])
    assert not closes_connection([("HOST", "x")])  # a GET: no body at all


def test_a_body_over_the_limit_or_of_unknown_length_closes_it():
    assert closes_connection([("CONTENT-LENGTH", str(DEFAULT_MAX_BODY + 1))])
    assert closes_connection([("Content-Length", "2097152")], limit=1 << 20)
    assert closes_connection([("TRANSFER-ENCODING", "chunked")])
    assert closes_connection([("CONTENT-LENGTH", "lots")])
