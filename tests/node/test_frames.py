"""The server's own WebSocket frame reading and writing (the plain frames clients
send, the text frames the node answers with) against wsproto, the library that reads
every other frame: what one writes the other must read back the same."""

from __future__ import annotations

import os

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    Request,
    TextMessage,
)
from wsproto.frame_protocol import FrameProtocol

from chain_sim.node.jsonrpc import MAX_REQUEST_BYTES
from chain_sim.node.server import _TOO_BIG, _plain_frame, _text_frame


def client_pair() -> tuple[WSConnection, WSConnection]:
    """An open (client, server) wsproto pair."""
    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="localhost", target="/")))
    assert isinstance(next(server.events()), Request)
    client.receive_data(server.send(AcceptConnection()))
    assert isinstance(next(client.events()), AcceptConnection)
    return client, server


def client_frame(message: str | bytes) -> bytes:
    """``message`` as a client (masked) frame, written by wsproto."""
    proto = FrameProtocol(client=True, extensions=[])
    return bytes(proto.send_data(message, fin=True))


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 125, 126, 127, 65535, 65536, 70001])
def test_plain_client_frames_read_as_wsproto_writes_them(size: int) -> None:
    text = "".join(chr(0x20 + (i * 7919) % 0x5E) for i in range(size))
    for message in (text, "é€𝄞" * (size // 3), os.urandom(size)):
        frame = client_frame(message)
        assert _plain_frame(frame) == (message, len(frame))
        assert _plain_frame(frame + b"\x81") == (message, len(frame))   # next frame's start
        for cut in {0, 1, 2, 3, len(frame) // 2, len(frame) - 1}:
            need = _plain_frame(frame[:cut])
            assert isinstance(need, int) and cut < need <= len(frame)


def test_other_frames_go_to_wsproto() -> None:
    client, _ = client_pair()
    assert _plain_frame(client.send(Ping(b"hi"))) is None
    first = client.send(Message(data="part", message_finished=False))
    assert _plain_frame(first) is None                       # fragmented
    assert _plain_frame(client.send(CloseConnection(code=1000))) is None
    raw = FrameProtocol(client=True, extensions=[]).send_data(b"\xff\xfe", fin=True)
    bad_utf8 = bytes([0x81]) + bytes(raw[1:])                # a text frame of bad UTF-8
    assert _plain_frame(bad_utf8) is None
    unmasked = bytes([0x81, 2]) + b"hi"                      # servers' frames: not a client's
    assert _plain_frame(unmasked) is None
    rsv = bytes([0xC1]) + client_frame("hi")[1:]             # an extension bit
    assert _plain_frame(rsv) is None
    # lengths not in their shortest encoding, or with the top bit set: wsproto refuses
    long2 = bytes([0x81, 0xFE]) + (5).to_bytes(2, "big") + b"mask" + b"hello"
    long8 = bytes([0x81, 0xFF]) + (200).to_bytes(8, "big") + b"mask" + bytes(200)
    top = bytes([0x81, 0xFF]) + (1 << 63 | 300).to_bytes(8, "big") + b"mask"
    for frame in (long2, long8, top):
        assert _plain_frame(frame) is None
        _, server = client_pair()
        server.receive_data(frame)
        (event,) = list(server.events())
        assert isinstance(event, CloseConnection) and event.code == 1002


def test_a_message_over_the_limit_is_told_from_its_header() -> None:
    head = bytes([0x81, 0xFF]) + (MAX_REQUEST_BYTES + 1).to_bytes(8, "big") + b"mask"
    assert _plain_frame(head) == _TOO_BIG
    head = bytes([0x81, 0xFF]) + MAX_REQUEST_BYTES.to_bytes(8, "big") + b"mask"
    assert _plain_frame(head) == 14 + MAX_REQUEST_BYTES


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 100_000])
def test_server_text_frames_read_by_wsproto(size: int) -> None:
    client, _ = client_pair()
    text = ("ü" * size)[:size]
    client.receive_data(_text_frame(text))
    events = list(client.events())
    assert len(events) == 1 and isinstance(events[0], TextMessage)
    assert events[0].data == text and events[0].message_finished


def test_bytes_messages_round_trip_through_the_server_connection() -> None:
    """A wsproto server reading what the plain reader accepts: same messages."""
    client, server = client_pair()
    messages: list[str | bytes] = ["x", b"\x00\x01", "{" * 300]
    for message in messages:
        frame = client.send(TextMessage(data=message) if isinstance(message, str)
                            else BytesMessage(data=message))
        got = _plain_frame(frame)
        assert got == (message, len(frame))
        server.receive_data(frame)
        (event,) = list(server.events())
        assert isinstance(event, TextMessage | BytesMessage) and event.data == message
