#!/usr/bin/env python3
"""S2S interop: a user on Liaison (alice@c.test) and a user on a real
Prosody (carol@b.test) chat 1:1 across the federation link.

Started by the Go tests in internal/gateway/xmpp with --phase active (the
agreement is in force) or --phase expired. Prints PASS/FAIL lines.
"""
import argparse
import asyncio
import logging
import sys

from c2s import Client, check, classification, failures, make_label


async def drain(q):
    while not q.empty():
        q.get_nowait()


async def run(a):
    alice = Client("alice@%s/desk" % a.domain, "alicepw", a.ca)
    carol = Client("carol@%s/field" % a.partner_domain, "carolpw", a.ca)
    alice.connect(address=(a.host, a.port), force_starttls=True, disable_starttls=False)
    carol.connect(address=(a.partner_host, a.partner_port), force_starttls=True, disable_starttls=False)
    await asyncio.wait_for(asyncio.gather(alice.ready, carol.ready), 15)
    alice_jid = "alice@%s" % a.domain
    carol_jid = "carol@%s" % a.partner_domain

    if a.phase == "active":
        check("login-both", True)
        m = alice.make_message(mto=carol_jid, mbody="to prosody", mtype="chat")
        m.xml.append(make_label("RESTRICTED"))
        m.send()
        got = await asyncio.wait_for(carol.inbox.get(), 15)
        cls, dm = classification(got)
        check("chat-liaison-to-prosody", got["body"] == "to prosody" and cls == "RESTRICTED" and
              dm == "XPOL RESTRICTED" and got["from"].bare == alice_jid, (got["body"], cls, dm, got["from"]))

        m = carol.make_message(mto=alice_jid, mbody="to liaison", mtype="chat")
        m.xml.append(make_label("RESTRICTED"))
        m.send()
        got = await asyncio.wait_for(alice.inbox.get(), 15)
        cls, _ = classification(got)
        check("chat-prosody-to-liaison", got["body"] == "to liaison" and cls == "RESTRICTED" and
              got["from"].bare == carol_jid, (got["body"], cls, got["from"]))

        m = carol.make_message(mto=alice_jid, mbody="unlabelled", mtype="chat")
        m.send()
        got = await asyncio.wait_for(alice.inbox.get(), 15)
        cls, _ = classification(got)
        check("unlabelled-gets-default", got["body"] == "unlabelled" and cls == "UNCLASSIFIED", (got["body"], cls))

        m = alice.make_message(mto=carol_jid, mbody="secret for prosody", mtype="chat")
        m.xml.append(make_label("SECRET"))
        m.send()
        err = await asyncio.wait_for(alice.errors.get(), 10)
        check("above-peer-clearance-bounced", err["error"]["condition"] == "forbidden", err["error"]["condition"])
        m = alice.make_message(mto=carol_jid, mbody="marker", mtype="chat")
        m.xml.append(make_label("UNCLASSIFIED"))
        m.send()
        got = await asyncio.wait_for(carol.inbox.get(), 15)
        check("above-peer-clearance-not-delivered", got["body"] == "marker", got["body"])

        room = "ops@conference.%s" % a.domain
        await alice["xep_0045"].join_muc_wait(room, "alice", maxstanzas=0, timeout=10)
        await carol["xep_0045"].join_muc_wait(room, "carol", maxstanzas=0, timeout=20)
        check("muc-remote-join", True)
        m = alice.make_message(mto=room, mbody="room to prosody", mtype="groupchat")
        m.xml.append(make_label("RESTRICTED"))
        m.send()
        got = await asyncio.wait_for(carol.inbox.get(), 15)
        cls, _ = classification(got)
        check("muc-liaison-to-prosody", got["body"] == "room to prosody" and cls == "RESTRICTED" and
              str(got["from"]) == room + "/alice", (got["body"], cls, got["from"]))
        await asyncio.wait_for(alice.inbox.get(), 15)  # alice's own echo
        m = carol.make_message(mto=room, mbody="room from prosody", mtype="groupchat")
        m.xml.append(make_label("RESTRICTED"))
        m.send()
        got = await asyncio.wait_for(alice.inbox.get(), 15)
        cls, _ = classification(got)
        check("muc-prosody-to-liaison", got["body"] == "room from prosody" and cls == "RESTRICTED" and
              str(got["from"]) == room + "/carol", (got["body"], cls, got["from"]))
    else:
        await drain(alice.errors)
        m = alice.make_message(mto=carol_jid, mbody="after expiry", mtype="chat")
        m.send()
        err = await asyncio.wait_for(alice.errors.get(), 10)
        check("expired-liaison-to-prosody-bounced", err["error"]["condition"] == "remote-server-not-found",
              err["error"]["condition"])
        # The first stanza on the open link makes Liaison close it; the next
        # one makes Prosody reconnect, which is refused, and Prosody bounces.
        for i in range(2):
            m = carol.make_message(mto=alice_jid, mbody="after expiry %d" % i, mtype="chat")
            m.send()
            try:
                await asyncio.wait_for(carol.errors.get(), 10 if i == 0 else 30)
                break
            except asyncio.TimeoutError:
                if i == 1:
                    raise
        check("expired-prosody-to-liaison-refused", alice.inbox.empty(), "alice received a message")
    for c in (alice, carol):
        c.disconnect()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--domain", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--partner-host", required=True)
    ap.add_argument("--partner-port", type=int, required=True)
    ap.add_argument("--partner-domain", required=True)
    ap.add_argument("--phase", choices=["active", "expired"], required=True)
    ap.add_argument("--debug", action="store_true")
    a = ap.parse_args()
    logging.basicConfig(level=logging.DEBUG if a.debug else logging.ERROR)
    loop = asyncio.get_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(run(a), 75))
    except Exception as e:
        check("script", False, repr(e))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
