package xmpp

const nsSM = "urn:xmpp:sm:3"
