#!/usr/bin/env python3
"""Scripted slixmpp clients against a Liaison XMPP gateway (C2S).

Started by the Go tests in internal/gateway/xmpp. Prints one line per check,
"PASS name" or "FAIL name: detail", and exits non-zero if any check failed.
Labels are handled as raw ElementTree elements because slixmpp's xep_0258
stanza classes are buggy (see the domain brief).
"""
import argparse
import asyncio
import copy
import logging
import sys
import xml.etree.ElementTree as ET

import slixmpp

SL = "urn:xmpp:sec-label:0"
CAT = "urn:xmpp:sec-label:catalog:2"
N4774 = "urn:nato:stanag:4774:confidentialitymetadatalabel:1:0"
failures = []


def check(name, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)), flush=True)
    if not ok:
        failures.append(name)


def make_label(cls):
    sl = ET.Element("{%s}securitylabel" % SL)
    dm = ET.SubElement(sl, "{%s}displaymarking" % SL)
    dm.text = "XPOL " + cls
    lab = ET.SubElement(sl, "{%s}label" % SL)
    o = ET.SubElement(lab, "{%s}originatorConfidentialityLabel" % N4774)
    ci = ET.SubElement(o, "{%s}ConfidentialityInformation" % N4774)
    p = ET.SubElement(ci, "{%s}PolicyIdentifier" % N4774, {"URI": "urn:oid:2.25.1"})
    p.text = "XPOL"
    c = ET.SubElement(ci, "{%s}Classification" % N4774)
    c.text = cls
    return sl


def classification(msg):
    sl = msg.xml.find("{%s}securitylabel" % SL)
    if sl is None:
        return None, None
    c = sl.find(".//{%s}Classification" % N4774)
    dm = sl.find("{%s}displaymarking" % SL)
    return (c.text if c is not None else None), (dm.text if dm is not None else None)


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, pw, ca, mech=None):
        super().__init__(jid, pw)
        if mech:
            self["feature_mechanisms"].use_mech = mech
        self.ca_certs = ca
        self.inbox = asyncio.Queue()
        self.errors = asyncio.Queue()
        self.ready = asyncio.get_event_loop().create_future()
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0045")
        self.register_plugin("xep_0199")
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


async def next_body(q, timeout=5):
    return await asyncio.wait_for(q.get(), timeout)


async def run(a):
    alice = Client("alice@%s/desk" % a.domain, "alicepw", a.ca, mech="SCRAM-SHA-256")
    bob = Client("bob@%s/desk" % a.domain, "bobpw", a.ca, mech="PLAIN")
    for c in (alice, bob):
        c.connect(address=(a.host, a.port), force_starttls=True, disable_starttls=False)
    await asyncio.wait_for(asyncio.gather(alice.ready, bob.ready), 15)
    check("login-starttls-sasl", True)

    info = await alice["xep_0030"].get_info(jid=a.domain, timeout=5)
    feats = info["disco_info"]["features"]
    check("disco-sec-label", SL in feats and CAT in feats, feats)
    await alice["xep_0199"].ping(jid=a.domain, timeout=5)
    check("ping", True)

    room = "ops@conference.%s" % a.domain
    iq = alice.Iq()
    iq["type"] = "get"
    iq["to"] = a.domain
    iq.xml.append(ET.Element("{%s}catalog" % CAT, {"to": room}))
    res = await iq.send(timeout=5)
    cat = res.xml.find("{%s}catalog" % CAT)
    sels = [it.get("selector") for it in cat] if cat is not None else []
    check("catalog-room", cat is not None and cat.get("restrict") == "true" and
          any("RESTRICTED" in (s or "") for s in sels) and not any("SECRET" in (s or "") for s in sels), sels)
    restricted = next(it.find("{%s}securitylabel" % SL) for it in cat if "RESTRICTED" in (it.get("selector") or ""))

    await alice["xep_0045"].join_muc_wait(room, "alice", maxstanzas=0, timeout=10)
    await bob["xep_0045"].join_muc_wait(room, "bob", maxstanzas=0, timeout=10)
    check("muc-join", True)

    m = alice.make_message(mto=room, mbody="labelled groupchat", mtype="groupchat")
    m.xml.append(copy.deepcopy(restricted))
    m.send()
    got = await next_body(bob.inbox)
    cls, dm = classification(got)
    check("muc-labelled-delivered", got["body"] == "labelled groupchat" and cls == "RESTRICTED" and
          dm == "XPOL RESTRICTED" and str(got["from"]) == room + "/alice", (got["body"], cls, dm, got["from"]))
    echo = await next_body(alice.inbox)
    check("muc-echo", echo["body"] == "labelled groupchat", echo["body"])

    m = alice.make_message(mto=room, mbody="above ceiling", mtype="groupchat")
    m.xml.append(make_label("SECRET"))
    m.send()
    err = await asyncio.wait_for(alice.errors.get(), 5)
    cond = err["error"]["condition"]
    check("muc-above-ceiling-bounced", cond == "forbidden", (cond, err["error"]["text"]))

    # Nothing reached bob: the next thing he receives is the marker.
    m = alice.make_message(mto=room, mbody="marker", mtype="groupchat")
    m.send()
    got = await next_body(bob.inbox)
    check("muc-above-ceiling-not-delivered", got["body"] == "marker", got["body"])
    await next_body(alice.inbox)

    m = alice.make_message(mto="bob@%s" % a.domain, mbody="direct", mtype="chat")
    m.xml.append(make_label("RESTRICTED"))
    m.send()
    got = await next_body(bob.inbox)
    cls, _ = classification(got)
    check("chat-labelled-delivered", got["body"] == "direct" and cls == "RESTRICTED" and
          got["from"].bare == "alice@%s" % a.domain, (got["body"], cls, got["from"]))

    m = alice.make_message(mto="bob@%s" % a.domain, mbody="too secret for bob", mtype="chat")
    m.xml.append(make_label("SECRET"))
    m.send()
    m = bob.make_message(mto="bob@%s" % a.domain, mbody="marker2", mtype="chat")
    m.send()
    got = await next_body(bob.inbox)
    check("chat-withheld-from-uncleared", got["body"] == "marker2", got["body"])

    m = bob.make_message(mto="alice@%s" % a.domain, mbody="secret from bob", mtype="chat")
    m.xml.append(make_label("SECRET"))
    m.send()
    err = await asyncio.wait_for(bob.errors.get(), 5)
    check("chat-above-clearance-bounced", err["error"]["condition"] == "forbidden", err["error"]["condition"])

    for c in (alice, bob):
        c.disconnect()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--domain", required=True)
    ap.add_argument("--ca", required=True)
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
