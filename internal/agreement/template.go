package agreement

// Template is an annotated agreement for two fictitious parties, written by
// "liaison agreement new". It does not validate until the placeholder keys
// and CA fingerprints are replaced with real ones.
const Template = `# A Communication Interoperability and Security agreement for Liaison.
#
# Every field below is signed: each party signs the deterministic CBOR
# encoding of everything except 'signatures' and 'notices'. Layout and
# comments are not signed and are not kept by 'approve' or 'sign'.
#
# Workflow: edit; 'liaison agreement validate'; each party records its
# domestic approval ('approve'); then each party signs ('sign'); 'verify'.

id: xaa-xbb-cis            # stable across versions; letters, digits, . _ -
version: 1                 # a renewal is version+1 with 'supersedes'
title: XAA-XBB Communication Interoperability and Security Agreement
# supersedes: sha256:...   # digest of the version this one renews

parties:
  - id: XAA                # ISO 3166 alpha-3 code, or a coalition code
    name: Republic of Xaa
    signing_authority: Ministry of Defence
    keys:
      # from 'liaison agreement keygen --out xaa.key'
      - alg: ed25519
        public: REPLACE-WITH-XAA-PUBLIC-KEY
    # SHA-256 of the DER certificate of XAA's Liaison CA
    ca_fingerprint: sha256:REPLACE-WITH-XAA-CA-FINGERPRINT
  - id: XBB
    name: Kingdom of Xbb
    signing_authority: Ministry of Foreign Affairs
    keys:
      - alg: ed25519
        public: REPLACE-WITH-XBB-PUBLIC-KEY
    ca_fingerprint: sha256:REPLACE-WITH-XBB-CA-FINGERPRINT

# Any of: exercise, operation, training, basing, equipment.
scope: [exercise, training]

channels:
  - name: exercise-ops
    scope: exercise        # must be one of the agreement's scopes
    members: [XAA, XBB]    # parties only
    ceiling:               # highest classification per member, in its own policy
      XAA: SECRET
      XBB: CONFIDENTIAL
    # Label applied when a message arrives without one (STANAG 4774 XML).
    default_label: <originatorConfidentialityLabel xmlns="urn:nato:stanag:4774:confidentialitymetadatalabel:1:0"><ConfidentialityInformation><PolicyIdentifier URI="urn:oid:2.25.4711">XAA</PolicyIdentifier><Classification>RESTRICTED</Classification></ConfidentialityInformation></originatorConfidentialityLabel>
    precedences: [FLASH, IMMEDIATE, PRIORITY, ROUTINE]   # empty = all
    content:
      max_size: 1048576    # bytes
      types: [text/plain]
      dirty_words: xaa-xbb # name of the agreed dirty-word list

labels:
  policies:                # one or more per party
    - party: XAA
      policy_id: 2.25.4711.1
      name: XAA national security policy
    - party: XBB
      policy_id: 2.25.4711.2
      name: XBB national security policy
  equivalences:            # labels of 'from' may be translated to 'to'
    - from: 2.25.4711.1
      to: 2.25.4711.2
    - from: 2.25.4711.2
      to: 2.25.4711.1
  groups:
    XAA: [liaison-staff]
    XBB: [liaison-staff]

term:
  effective: 2026-01-01    # YYYY-MM-DD (midnight UTC) or RFC 3339
  expiry: 2031-01-01       # exclusive
  notice: 180d             # a termination takes effect this long after notice

# Optional equipment annex.
equipment:
  - type: radio
    designation: example-radio-model
    serials: [SN-0001]
    holder: XBB
`
