#!/usr/bin/env python3
"""An independent verifier of Consentry's transparency log, written from RFC 9162 section 2.1 (Merkle tree
hashes, inclusion and consistency proofs) and the C2SP specifications signed-note and tlog-checkpoint.
It shares no code with Consentry; its only dependency is Python's `cryptography` (Ed25519).

Usage (every command exits 0 and prints JSON when everything verifies, 1 with the reason otherwise):

  verify_tlog.py checkpoint NOTE VKEYS ORIGIN
      A signed checkpoint: its signature by one of the verifier keys (one per line) and its body.
  verify_tlog.py consistency OLD_NOTE NEW_NOTE PROOF_JSON VKEYS ORIGIN
      Two signed checkpoints and the consistency proof ({"hashes": [base64, ...]}) between them.
  verify_tlog.py receipt RECEIPT_JSON VKEYS ORIGIN
      A receipt ({"payload", "leaf", "inclusion_proof", "checkpoint", ...}): its checkpoint, each leaf's
      inclusion in that tree, the leaves against the events the payload names, and that the pseudonym in
      each leaf is the subject's under the key the receipt opens.
"""

import base64
import hashlib
import hmac
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class Refused(Exception):
    pass


# --- RFC 9162 section 2.1 -------------------------------------------------------------------------

def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(index, size, leaf, proof):
    """Section 2.1.3.2."""
    if index >= size:
        raise Refused("leaf index is not below the tree size")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise Refused("inclusion proof too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Refused("inclusion proof too short")
    return r


def verify_consistency(first, second, first_hash, second_hash, proof):
    """Section 2.1.4.2."""
    if first > second:
        raise Refused("the first tree is larger than the second")
    if first == second:
        if proof or first_hash != second_hash:
            raise Refused("equal sizes need equal roots and an empty proof")
        return
    if first == 0:
        if proof:
            raise Refused("a proof from the empty tree must be empty")
        return
    if not proof:
        raise Refused("empty consistency proof")
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_hash)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise Refused("consistency proof too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Refused("consistency proof too short")
    if fr != first_hash or sr != second_hash:
        raise Refused("consistency proof does not match the roots")


# --- C2SP signed-note and tlog-checkpoint ---------------------------------------------------------

def parse_vkey(line):
    name, key_id, key = line.split("+", 2)
    raw = base64.b64decode(key, validate=True)
    if len(raw) != 33 or raw[0] != 0x01:
        raise Refused("not an Ed25519 verifier key")
    expected = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if bytes.fromhex(key_id) != expected:
        raise Refused("verifier key id does not match its key")
    return name, expected, Ed25519PublicKey.from_public_bytes(raw[1:])


def open_note(note, vkeys):
    """Returns the note's text once a signature by one of `vkeys` verifies."""
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise Refused("not a signed note")
    text, signatures = note[: split + 1], note[split + 2 :]
    verified = False
    for line in signatures[:-1].split("\n"):
        if not line.startswith("\u2014 "):
            raise Refused("malformed signature line")
        name, blob = line[2:].split(" ", 1)
        blob = base64.b64decode(blob, validate=True)
        for vname, vid, key in vkeys:
            if vname == name and vid == blob[:4]:
                try:
                    key.verify(blob[4:], text.encode())
                except InvalidSignature:
                    raise Refused("a signature by a known key does not verify")
                verified = True
    if not verified:
        raise Refused("no signature by a known key")
    return text


def open_checkpoint(note, vkeys, origin):
    lines = open_note(note, vkeys).split("\n")
    if len(lines) < 4 or lines[0] != origin:
        raise Refused("not a checkpoint of this log")
    if not lines[1].isdigit() or (lines[1] != "0" and lines[1].startswith("0")):
        raise Refused("malformed tree size")
    root = base64.b64decode(lines[2], validate=True)
    if len(root) != 32:
        raise Refused("malformed root")
    return int(lines[1]), root


# --- Commands -------------------------------------------------------------------------------------

def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def load_vkeys(path):
    return [parse_vkey(line) for line in read(path).splitlines() if line]


def cmd_checkpoint(note, vkeys, origin):
    size, root = open_checkpoint(read(note), load_vkeys(vkeys), origin)
    return {"size": size, "root": base64.b64encode(root).decode()}


def cmd_consistency(old_note, new_note, proof, vkeys, origin):
    keys = load_vkeys(vkeys)
    old_size, old_root = open_checkpoint(read(old_note), keys, origin)
    new_size, new_root = open_checkpoint(read(new_note), keys, origin)
    hashes = [base64.b64decode(h, validate=True) for h in json.loads(read(proof))["hashes"]]
    verify_consistency(old_size, new_size, old_root, new_root, hashes)
    return {"from": old_size, "to": new_size}


def check_leaf(leaf, proof, size, root):
    data = base64.b64decode(leaf["data"], validate=True)
    path = [base64.b64decode(h, validate=True) for h in proof]
    if root_from_inclusion(leaf["index"], size, leaf_hash(data), path) != root:
        raise Refused("an inclusion proof does not lead to the checkpoint's root")
    return json.loads(data)


def cmd_receipt(receipt, vkeys, origin):
    r = json.loads(read(receipt))
    size, root = open_checkpoint(r["checkpoint"], load_vkeys(vkeys), origin)
    leaves = [(r["leaf"], r["inclusion_proof"])]
    leaves += [(o, o["inclusion_proof"]) for o in r.get("other_leaves", [])]
    events = [check_leaf(leaf, proof, size, root) for leaf, proof in leaves]
    payload = r["payload"]
    named = payload["consentry"]["events"]
    if len(named) != len(events):
        raise Refused("the receipt names another number of events than it proves")
    key = base64.b64decode(r["subject_key"], validate=True)
    subject = payload["piiPrincipalId"]
    pseudonym = hmac.new(key, subject.encode(), hashlib.sha256).hexdigest()
    for (leaf, _), event, claim in zip(leaves, events, named):
        data = base64.b64decode(leaf["data"], validate=True)
        if hashlib.sha256(data).hexdigest() != claim["hash"]:
            raise Refused("a leaf is not the event the receipt names")
        if event["seq"] != claim["seq"] or event["seq"] != leaf["index"] + 1:
            raise Refused("a leaf is not at the event's place in the ledger")
        if event["purpose"] != claim["purpose_id"] or event["action"] != claim["event_type"]:
            raise Refused("a leaf records another change than the receipt says")
        if event["subject"] != pseudonym:
            raise Refused("the events are not about the receipt's subject")
    return {"size": size, "events": [e["seq"] for e in events], "subject": subject}


COMMANDS = {"checkpoint": cmd_checkpoint, "consistency": cmd_consistency, "receipt": cmd_receipt}

if __name__ == "__main__":
    try:
        print(json.dumps(COMMANDS[sys.argv[1]](*sys.argv[2:])))
    except (Refused, ValueError, KeyError, IndexError, TypeError) as e:
        print(f"refused: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
