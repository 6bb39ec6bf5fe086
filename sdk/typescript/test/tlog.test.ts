// The transparency-log checks against published vectors: the RFC 6962 / RFC 9162 Merkle tree of
// Certificate Transparency (the eight leaves, their roots, inclusion and consistency proofs, as published
// with transparency-dev/merkle), and the signed note of Go's golang.org/x/mod/sumdb/note (key PeterNeumann).

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";

import { VerificationError } from "../src/index.js";
import { leafHash, openCheckpoint, openNote, parseVerifierKeys, rootFromInclusion, verifyConsistency } from "../src/tlog.js";

const hex = (h: string) => Uint8Array.from(Buffer.from(h, "hex"));
const LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];
const ROOTS = [
  "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
  "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
  "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
  "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
  "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
  "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
].map(hex);
const INCLUSION: [number, number, string[]][] = [
  [0, 1, []],
  [0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]],
  [5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]],
  [2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]],
  [1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]],
];
const CONSISTENCY: [number, number, string[]][] = [
  [1, 1, []],
  [1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]],
  [6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]],
  [2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]],
  [6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a", "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]],
];

const refusedWith = (code: string) => (e: unknown) => e instanceof VerificationError && e.code === code;

test("inclusion proofs: the published vectors verify, any change does not", async () => {
  for (const [index, size, proofHex] of INCLUSION) {
    const proof = proofHex.map(hex);
    const leaf = await leafHash(hex(LEAVES[index]!));
    const root = await rootFromInclusion(BigInt(index), BigInt(size), leaf, proof);
    assert.deepEqual(root, ROOTS[size - 1], `${index} in ${size}`);
    const other = async (i: number, s: number, l: Uint8Array, p: Uint8Array[]) => {
      try {
        const r = await rootFromInclusion(BigInt(i), BigInt(s), l, p);
        return Buffer.compare(r, ROOTS[size - 1]!) !== 0;
      } catch (e) {
        return e instanceof VerificationError;
      }
    };
    assert.ok(await other(index + 1, size, leaf, proof), "another index");
    assert.ok(await other(index, size * 2, leaf, proof), "another size");
    assert.ok(await other(index, size, await leafHash(new TextEncoder().encode("WrongLeaf")), proof), "another leaf");
    assert.ok(await other(index, size, leaf, [...proof, ROOTS[0]!]), "a longer proof");
    for (let i = 0; i < proof.length; i++) {
      const wrong = proof.map((p) => Uint8Array.from(p));
      wrong[i]![0]! ^= 8;
      assert.ok(await other(index, size, leaf, wrong), `hash ${i} changed`);
    }
    if (proof.length > 0) assert.ok(await other(index, size, leaf, proof.slice(0, -1)), "a shorter proof");
  }
});

test("consistency proofs: the published vectors verify, any change does not", async () => {
  for (const [from, to, proofHex] of CONSISTENCY) {
    const proof = proofHex.map(hex);
    const [r1, r2] = [ROOTS[from - 1]!, ROOTS[to - 1]!];
    await verifyConsistency(BigInt(from), BigInt(to), r1, r2, proof);
    if (proof.length === 0) continue;
    await assert.rejects(verifyConsistency(BigInt(from), BigInt(to), r2, r1, proof), refusedWith("bad_proof"));
    await assert.rejects(verifyConsistency(BigInt(from), BigInt(to), r1, r2, proof.slice(1)), refusedWith("bad_proof"));
    const wrong = proof.map((p) => Uint8Array.from(p));
    wrong[0]![0]! ^= 1;
    await assert.rejects(verifyConsistency(BigInt(from), BigInt(to), r1, r2, wrong), refusedWith("bad_proof"));
  }
});

const VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const NOTE = `${TEXT}\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`;

test("signed notes: Go's reference note opens, changed or unsigned ones do not", async () => {
  const keys = await parseVerifierKeys(VKEY);
  assert.deepEqual(await openNote(NOTE, keys), { text: TEXT, signer: "PeterNeumann" });
  await assert.rejects(openNote(NOTE.replace("cryptography", "cryptographx"), keys), refusedWith("bad_proof"));
  await assert.rejects(openNote(TEXT, keys), refusedWith("bad_proof"));
  await assert.rejects(openNote(NOTE.replace("\u2014", "-"), keys), refusedWith("bad_proof"));
  // A cosignature by a key not given is skipped.
  assert.equal((await openNote(`${NOTE}\u2014 witness.example AAAAAAAA\n`, keys)).signer, "PeterNeumann");
  await assert.rejects(parseVerifierKeys(VKEY.replace("c74f20a3", "c74f20a4")), refusedWith("unusable_key"));
  // The note is no checkpoint: its first line is not the origin, nor a size and root after it.
  await assert.rejects(openCheckpoint(NOTE, keys), refusedWith("bad_proof"));
});

test("a verifier key whose base64 holds '+' is read whole", async () => {
  let pair: CryptoKeyPair;
  let raw: Buffer;
  do {
    pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
    raw = Buffer.concat([Buffer.of(1), Buffer.from(await crypto.subtle.exportKey("raw", pair.publicKey))]);
  } while (!raw.toString("base64").includes("+"));
  const name = "log.example/a";
  const id = createHash("sha256").update(`${name}\n`).update(raw).digest().subarray(0, 4);
  const keys = await parseVerifierKeys(`${name}+${id.toString("hex")}+${raw.toString("base64")}\n`);
  const text = `${name}\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n`;
  const signature = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, pair.privateKey, new TextEncoder().encode(text)));
  const note = `${text}\n\u2014 ${name} ${Buffer.concat([id, signature]).toString("base64")}\n`;
  const checkpoint = await openCheckpoint(note, keys);
  assert.deepEqual([checkpoint.origin, checkpoint.size, checkpoint.signer], [name, 0n, name]);
  await assert.rejects(openCheckpoint(note, keys, "other.example/log"), refusedWith("bad_proof"));
});
