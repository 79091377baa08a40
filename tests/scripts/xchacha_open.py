#!/usr/bin/env python3
"""Independent check of hookrelay's sealed secrets (src/send/store/encryption.rs).

Opens (or seals) an `enc:v1:<key id>:<base64(nonce || ciphertext || tag)>` value with a
different XChaCha20-Poly1305 implementation: PyNaCl (libsodium) if installed, else
pycryptodome's ChaCha20_Poly1305 with a 24-byte nonce. The key id is checked with hashlib.

    xchacha_open.py open <key base64> <aad hex> <sealed>            -> plaintext hex
    xchacha_open.py seal <key base64> <aad hex> <nonce hex> <plaintext hex> -> sealed

Exit status 3 when neither package is installed (the Rust test then skips), 1 on a
failed check.
"""

import base64
import hashlib
import sys

KEY_ID_DOMAIN = b"hookrelay encryption key id v1\0"


def backend():
    try:
        from nacl import bindings

        def decrypt(key, nonce, aad, ct):
            return bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(ct, aad, nonce, key)

        def encrypt(key, nonce, aad, pt):
            return bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(pt, aad, nonce, key)

        return "pynacl", decrypt, encrypt
    except ImportError:
        pass
    try:
        from Crypto.Cipher import ChaCha20_Poly1305

        def decrypt(key, nonce, aad, ct):
            cipher = ChaCha20_Poly1305.new(key=key, nonce=nonce)
            cipher.update(aad)
            return cipher.decrypt_and_verify(ct[:-16], ct[-16:])

        def encrypt(key, nonce, aad, pt):
            cipher = ChaCha20_Poly1305.new(key=key, nonce=nonce)
            cipher.update(aad)
            ct, tag = cipher.encrypt_and_digest(pt)
            return ct + tag

        return "pycryptodome", decrypt, encrypt
    except ImportError:
        pass
    print("neither PyNaCl nor pycryptodome is installed", file=sys.stderr)
    sys.exit(3)


def key_id(key):
    return hashlib.sha256(KEY_ID_DOMAIN + key).hexdigest()[:16]


def main(argv):
    _, decrypt, encrypt = backend()
    mode, key_b64, aad_hex = argv[1], argv[2], argv[3]
    key = base64.b64decode(key_b64)
    assert len(key) == 32, "key must be 32 bytes"
    aad = bytes.fromhex(aad_hex)
    if mode == "open":
        prefix, version, kid, body = argv[4].split(":", 3)
        if (prefix, version) != ("enc", "v1"):
            print("not an enc:v1 value", file=sys.stderr)
            return 1
        if kid != key_id(key):
            print("key id %s is not the key's id %s" % (kid, key_id(key)), file=sys.stderr)
            return 1
        raw = base64.b64decode(body, validate=True)
        nonce, ct = raw[:24], raw[24:]
        header = ("enc:v1:%s:" % kid).encode()
        print(decrypt(key, nonce, header + aad, ct).hex())
        return 0
    if mode == "seal":
        nonce = bytes.fromhex(argv[4])
        assert len(nonce) == 24, "nonce must be 24 bytes"
        plaintext = bytes.fromhex(argv[5])
        header = "enc:v1:%s:" % key_id(key)
        ct = encrypt(key, nonce, header.encode() + aad, plaintext)
        print(header + base64.b64encode(nonce + ct).decode())
        return 0
    print("mode must be open or seal", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
