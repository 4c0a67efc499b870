from services.gateway.limits import SERVER_DRAINS, closes_connection


def test_a_body_the_server_can_drain_keeps_the_connection():
    assert not closes_connection([("HOST", "x"), ("CONTENT-LENGTH", str(SERVER_DRAINS))])
    assert not closes_connection([("HOST", "x")])  # a GET: no body at all


def test_a_larger_body_or_one_of_unknown_length_closes_it():
    assert closes_connection([("CONTENT-LENGTH", str(SERVER_DRAINS + 1))])
    assert closes_connection([("Content-Length", "2097152")], drains=1 << 20)
    assert closes_connection([("TRANSFER-ENCODING", "chunked")])
    assert closes_connection([("CONTENT-LENGTH", "lots")])
