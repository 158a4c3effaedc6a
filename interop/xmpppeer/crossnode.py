#!/usr/bin/env python3
"""Two slixmpp clients on two Liaison nodes' XMPP gateways (C2S).

Started by TestGatewaysXMPPAcrossNodes in internal/node. alice logs in to
node A, bob to node B; each joins the room of its own domain that both
nodes map to one shared agreement channel. alice's labelled message must
reach bob with the label B's policy gives it; a message above the room
ceiling must bounce with an error and reach nobody. Prints "PASS name" or
"FAIL name: detail" per check and exits non-zero if any failed.
"""
import argparse
import asyncio
import logging
import sys
import xml.etree.ElementTree as ET

import slixmpp

SL = "urn:xmpp:sec-label:0"
N4774 = "urn:nato:stanag:4774:confidentialitymetadatalabel:1:0"
failures = []


def check(name, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)), flush=True)
    if not ok:
        failures.append(name)


def seclabel(label_xml):
    sl = ET.Element("{%s}securitylabel" % SL)
    lab = ET.SubElement(sl, "{%s}label" % SL)
    lab.append(ET.fromstring(label_xml))
    return sl


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, pw, ca):
        super().__init__(jid, pw)
        self["feature_mechanisms"].use_mech = "SCRAM-SHA-256"
        self.ca_certs = ca
        self.inbox = asyncio.Queue()
        self.errors = asyncio.Queue()
        self.ready = asyncio.get_event_loop().create_future()
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0045")
        self.add_event_handler("session_start", self._start)
        self.add_event_handler("message", self._msg)
        self.add_event_handler("message_error", self._msg)
        self.add_event_handler("failed_auth", lambda *_: self.ready.done() or self.ready.set_exception(RuntimeError("auth failed")))

    async def _start(self, _):
        self.send_presence()
        if not self.ready.done():
            self.ready.set_result(True)

    def _msg(self, msg):
        if msg["type"] == "error":
            self.errors.put_nowait(msg)
        elif msg["body"]:
            self.inbox.put_nowait(msg)


async def run(a):
    alice = Client("alice@%s/desk" % a.domain_a, "alicepw", a.ca)
    bob = Client("bob@%s/desk" % a.domain_b, "bobpw", a.ca)
    alice.connect(address=("127.0.0.1", a.port_a), force_starttls=True, disable_starttls=False)
    bob.connect(address=("127.0.0.1", a.port_b), force_starttls=True, disable_starttls=False)
    await asyncio.wait_for(asyncio.gather(alice.ready, bob.ready), 15)
    check("login-both-nodes", True)
    room_a, room_b = "%s@conference.%s" % (a.room, a.domain_a), "%s@conference.%s" % (a.room, a.domain_b)
    await alice["xep_0045"].join_muc_wait(room_a, "alice", maxstanzas=0, timeout=10)
    await bob["xep_0045"].join_muc_wait(room_b, "bob", maxstanzas=0, timeout=10)
    check("muc-join", True)

    m = alice.make_message(mto=room_a, mbody="position report across the boundary", mtype="groupchat")
    m.xml.append(seclabel(a.label))
    m.send()
    got = await asyncio.wait_for(bob.inbox.get(), 20)
    sl = got.xml.find("{%s}securitylabel" % SL)
    pol = sl.find(".//{%s}PolicyIdentifier" % N4774) if sl is not None else None
    cls = sl.find(".//{%s}Classification" % N4774) if sl is not None else None
    dm = sl.find("{%s}displaymarking" % SL) if sl is not None else None
    detail = (got["body"], pol.get("URI") if pol is not None else None, cls.text if cls is not None else None,
              dm.text if dm is not None else None, str(got["from"]))
    check("crossed-with-label", got["body"] == "position report across the boundary" and cls is not None and
          cls.text == a.want_class and pol is not None and pol.get("URI") == a.want_policy, detail)
    check("display-marking", dm is not None and bool(dm.text), detail)
    print("MARKING " + (dm.text if dm is not None and dm.text else ""), flush=True)
    check("from-room-of-receiving-node", str(got["from"]).startswith(room_b + "/"), detail)

    m = alice.make_message(mto=room_a, mbody="above the ceiling", mtype="groupchat")
    m.xml.append(seclabel(a.above))
    m.send()
    err = await asyncio.wait_for(alice.errors.get(), 10)
    check("above-ceiling-refused", err["error"]["condition"] == "forbidden", (err["error"]["condition"], err["error"]["text"]))

    m = alice.make_message(mto=room_a, mbody="marker", mtype="groupchat")
    m.xml.append(seclabel(a.label))
    m.send()
    got = await asyncio.wait_for(bob.inbox.get(), 20)
    check("above-ceiling-not-delivered", got["body"] == "marker", got["body"])
    for c in (alice, bob):
        c.disconnect()


def main():
    ap = argparse.ArgumentParser()
    for f in ("domain-a", "domain-b", "ca", "room", "label", "above", "want-class", "want-policy"):
        ap.add_argument("--" + f, required=True)
    ap.add_argument("--port-a", type=int, required=True)
    ap.add_argument("--port-b", type=int, required=True)
    ap.add_argument("--debug", action="store_true")
    a = ap.parse_args()
    logging.basicConfig(level=logging.DEBUG if a.debug else logging.ERROR)
    loop = asyncio.get_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(run(a), 60))
    except Exception as e:  # report, do not hide
        check("script", False, repr(e))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
