#!/usr/bin/env python3
"""A draft-14 publisher built on aiomoqt, the second IETF implementation that
the e2e test TestAiomoqt runs against our subscriber (internal/peers/aiomoqt.go
starts it; docs/moq.md, "Second implementation").

Two ways to meet a subscriber, both over WebTransport:
  --connect PORT  a client of a relay on 127.0.0.1:PORT: it publishes the
                  namespace (PUBLISH_NAMESPACE) and serves the relay's SUBSCRIBE;
  --listen PORT   a server on 127.0.0.1:PORT (--cert, --key) that subscribers
                  dial directly: it answers CLIENT_SETUP, announces the namespace
                  to every SUBSCRIBE_NAMESPACE and serves SUBSCRIBE.

Each SUBSCRIBE to --track in --namespace (fields split at "/") gets
SUBSCRIBE_OK and then --groups groups of --objects objects, one subgroup stream
(subgroup 0, objects with a timestamp extension) per group, ended by its FIN
(with --end-of-group, by an END_OF_GROUP status object and the FIN). Payloads are
pseudo-random, seeded by group and object, of varied sizes, the first object
of a group larger than one QUIC packet. With --msf-catalog, a SUBSCRIBE to the
track "catalog" gets one group: an MSF catalog naming --track.

stdout gets {"ready": true} once the namespace is published (--connect) or the
server listens (--listen); then, for each subscription, one JSON line per
group once its stream is finished, {"group": G, "objects": ["<hex payload>",
...]}, and {"done": true}: what the test compares our subscriber's output with,
byte for byte. Logs go to stderr.
"""
import argparse
import asyncio
import json
import logging
import random
import sys

from aiomoqt import protocol
from aiomoqt.client import MOQTClient
from aiomoqt.messages import PublishNamespaceOk, SubgroupHeader
from aiomoqt.server import MOQTServer
from qh3.h3.connection import Setting

from aiomoqt.types import MOQT_CUR_VERSION, MOQT_TIMESTAMP_EXT, MOQTMessageType, SetupParamType

SUBSCRIBE_ERROR_DOES_NOT_EXIST = 0x4
MSF_CATALOG_TRACK = "catalog"


def quote_available_protocols(send_headers):
    """aiomoqt 0.5.3 sends `wt-available-protocols: moq-00`, a bare token, but
    WebTransport over HTTP/3 makes the header a structured-field list of
    strings, and moq-relay refuses the CONNECT ("invalid protocol header").
    This sends the string "moq-00" instead."""
    def send(self, stream_id, headers, end_stream=False):
        headers = [(k, b'"%s"' % v) if k == b"wt-available-protocols" and not v.startswith(b'"') else (k, v)
                   for k, v in headers]
        return send_headers(self, stream_id, headers, end_stream)
    return send


protocol.H3CustomConnection.send_headers = quote_available_protocols(protocol.H3CustomConnection.send_headers)


def announce_extended_connect(get_local_settings):
    """qh3 1.9.4, and so an aiomoqt server, leaves SETTINGS_ENABLE_CONNECT_PROTOCOL
    (RFC 9220) out of its SETTINGS, without which a WebTransport client must not
    send the extended CONNECT: ours refuses ("server does not enable extended
    CONNECT"), as browsers do. This announces it."""
    def settings(self):
        return {**get_local_settings(self), Setting.ENABLE_CONNECT_PROTOCOL: 1}
    return settings


def payload(group: int, obj: int) -> bytes:
    rng = random.Random(group * 1_000_003 + obj)
    size = 70_000 + rng.randrange(1_000) if obj == 0 else 1 + rng.randrange(3_000)
    return rng.randbytes(size)


class Publisher:
    def __init__(self, args):
        self.args = args
        self.namespace = tuple(args.namespace.split("/"))

    def register(self, peer) -> None:
        peer.register_handler(MOQTMessageType.SUBSCRIBE, self.on_subscribe)

    async def on_subscribe(self, session, msg) -> None:
        if msg.track_namespace != tuple(f.encode() for f in self.namespace):
            session.subscribe_error(msg.request_id, error_code=SUBSCRIBE_ERROR_DOES_NOT_EXIST, reason="no such namespace")
            return
        if self.args.msf_catalog and msg.track_name == MSF_CATALOG_TRACK.encode():
            ok = session.subscribe_ok(request_msg=msg)
            await self.send_catalog(session, ok.track_alias)
            return
        if msg.track_name != self.args.track.encode():
            session.subscribe_error(msg.request_id, error_code=SUBSCRIBE_ERROR_DOES_NOT_EXIST, reason="no such track")
            return
        ok = session.subscribe_ok(request_msg=msg)
        for group in range(self.args.groups):
            sent = await self.send_group(session, ok.track_alias, group)
            print(json.dumps({"group": group, "objects": sent}), flush=True)
        print(json.dumps({"done": True}), flush=True)

    async def send_catalog(self, session, alias: int) -> None:
        """Group 0 of the MSF catalog track: one object, an independent
        catalog (draft-ietf-moq-msf-00) naming --track in this namespace."""
        catalog = {"version": 1, "tracks": [{"name": self.args.track, "packaging": "loc", "isLive": True,
                                              "role": "video", "namespace": "/".join(self.namespace)}]}
        stream_id = session._h3.create_webtransport_stream(session_id=session._session_id, is_unidirectional=True)
        header = SubgroupHeader(track_alias=alias, group_id=0, subgroup_id=0, extensions_present=True)
        session._quic.send_stream_data(stream_id, header.serialize().data)
        buf = header.next_object(payload=json.dumps(catalog).encode(), extensions={MOQT_TIMESTAMP_EXT: 0})
        session._quic.send_stream_data(stream_id, buf.data, end_stream=True)
        session.transmit()

    async def send_group(self, session, alias: int, group: int) -> list:
        stream_id = session._h3.create_webtransport_stream(session_id=session._session_id, is_unidirectional=True)
        header = SubgroupHeader(track_alias=alias, group_id=group, subgroup_id=0, extensions_present=True)
        session._quic.send_stream_data(stream_id, header.serialize().data)
        sent = []
        for obj in range(self.args.objects):
            data = payload(group, obj)
            buf = header.next_object(payload=data, extensions={MOQT_TIMESTAMP_EXT: group * 1000 + obj})
            session._quic.send_stream_data(stream_id, buf.data)
            session.transmit()
            sent.append(data.hex())
            await asyncio.sleep(self.args.interval)
        # Through moq-relay the FIN alone ends the group: the relay stops
        # reading at an END_OF_GROUP status and may send STOP_SENDING before
        # it sees the FIN, and aiomoqt 0.5.3 ends its whole session on any
        # STOP_SENDING.
        end = header.end_group().data if self.args.end_of_group else b""
        session._quic.send_stream_data(stream_id, end, end_stream=True)
        session.transmit()
        return sent

    async def connect(self) -> None:
        # Unverified: the relay's certificate is self-signed, which qh3 1.9.4
        # refuses as its own trust anchor ("the server certificate is
        # unacceptable"), and aiomoqt cannot pin a fingerprint. Loopback only.
        client = MOQTClient("127.0.0.1", self.args.connect, endpoint=self.args.endpoint, verify_tls=False)
        self.register(client)
        async with client.connect() as session:
            await session.client_session_init()
            response = await session.publish_namespace(namespace=self.namespace, wait_response=True)
            if not isinstance(response, PublishNamespaceOk):
                raise SystemExit(f"aiomoqt_pub: PUBLISH_NAMESPACE refused: {response}")
            print(json.dumps({"ready": True}), flush=True)
            await session.async_closed()

    async def listen(self) -> None:
        protocol.H3CustomConnection._get_local_settings = announce_extended_connect(
            protocol.H3CustomConnection._get_local_settings)
        server = MOQTServer("127.0.0.1", self.args.listen, certificate=self.args.cert,
                            private_key=self.args.key, endpoint=self.args.endpoint)
        self.register(server)
        server.register_handler(MOQTMessageType.CLIENT_SETUP, self.on_client_setup)
        server.register_handler(MOQTMessageType.SUBSCRIBE_NAMESPACE, self.on_subscribe_namespace)
        await server.serve()
        print(json.dumps({"ready": True}), flush=True)
        await asyncio.Event().wait()  # until killed

    async def on_client_setup(self, session, msg) -> None:
        # aiomoqt's own handler answers SERVER_SETUP without MAX_REQUEST_ID,
        # which leaves the client no request at all (draft-14 default 0).
        if MOQT_CUR_VERSION not in msg.versions:
            session.close(reason_phrase="no common version")
            return
        session.server_setup(parameters={SetupParamType.MAX_REQUEST_ID: 100})
        session._moqt_session_setup.set_result(True)

    async def on_subscribe_namespace(self, session, msg) -> None:
        session.subscribe_namespace_ok(msg)
        prefix = tuple(msg.namespace_prefix)
        if tuple(f.encode() for f in self.namespace[:len(prefix)]) == prefix:
            session.publish_namespace(namespace=self.namespace)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--connect", type=int, metavar="PORT", help="publish into the relay on 127.0.0.1:PORT")
    mode.add_argument("--listen", type=int, metavar="PORT", help="serve subscribers on 127.0.0.1:PORT")
    parser.add_argument("--cert", help="PEM certificate (--listen)")
    parser.add_argument("--key", help="PEM private key (--listen)")
    parser.add_argument("--endpoint", default="anon", help="URL path of the WebTransport session")
    parser.add_argument("--namespace", default="aiomoqt/demo")
    parser.add_argument("--track", default="data")
    parser.add_argument("--groups", type=int, default=5)
    parser.add_argument("--objects", type=int, default=4)
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between objects")
    parser.add_argument("--end-of-group", action="store_true",
                        help="end each group with an END_OF_GROUP status object before the FIN")
    parser.add_argument("--msf-catalog", action="store_true",
                        help='also serve an MSF catalog track "catalog" naming --track')
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if args.debug else logging.WARNING)
    pub = Publisher(args)
    asyncio.run(pub.connect() if args.connect else pub.listen())
    return 0


if __name__ == "__main__":
    sys.exit(main())
