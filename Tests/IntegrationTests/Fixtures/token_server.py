#!/usr/bin/env python3
"""A minimal Docker registry token server for the pull tests (loopback only).

usage: token_server.py DIR PORT SERVICE
Writes DIR/token.crt (the registry's rootcertbundle) and serves GET /token:
requests with HTTP basic credentials msb:secret get a JWT (RS256, x5c header) granting
pull and push on the requested repository scope; anonymous requests get 401.
"""
import base64, datetime, json, os, signal, sys, time, uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

# The Swift test runner starts children with signals blocked; SIGTERM must end us.
signal.pthread_sigmask(signal.SIG_SETMASK, [])
directory, port, service = sys.argv[1], int(sys.argv[2]), sys.argv[3]
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "msb-test-token-issuer")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
with open(os.path.join(directory, "token.crt"), "wb") as f:
    f.write(cert.public_bytes(serialization.Encoding.PEM))

def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

def token(scope):
    access = []
    if scope:
        kind, repository, _ = scope.split(":", 2)
        access.append({"type": kind, "name": repository, "actions": ["pull", "push"]})
    header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]}
    issued = int(time.time())
    claims = {"iss": "msb-test-issuer", "sub": "msb", "aud": service, "exp": issued + 300, "nbf": issued - 10,
              "iat": issued, "jti": str(uuid.uuid4()), "access": access}
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + b64(signature)

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        expected = "Basic " + base64.b64encode(b"msb:secret").decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.end_headers()
            self.wfile.write(b'{"errors":[{"code":"UNAUTHORIZED","message":"credentials required"}]}')
            return
        scope = parse_qs(urlparse(self.path).query).get("scope", [""])[0]
        body = json.dumps({"token": token(scope), "expires_in": 300}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", port), Handler).serve_forever()
