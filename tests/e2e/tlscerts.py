"""Test certificates for the TLS tests, made at test time with the openssl
command (nothing checked in, nothing fetched): a CA, two server
certificates for 127.0.0.1 and localhost (serials SERIAL and SERIAL2, for
the SIGHUP reload), a client certificate, an expired one, and one from a
CA the server does not trust. All EC P-256, short-lived."""
import base64
import hashlib
import os
import ssl
import subprocess
import types

SERIAL, SERIAL2 = 0x1201, 0x1202


def _ossl(d, *args):
    subprocess.run(["openssl"] + list(args), cwd=d, check=True, timeout=30,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _key_csr(d, name, cn):
    _ossl(d, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
          "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn)


def _sign(d, name, ca, serial, days, ext=None):
    args = ["x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
            "-set_serial", str(serial), "-days", str(days), "-out", name + ".pem"]
    if ext:
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(ext)
        args += ["-extfile", name + ".ext"]
    _ossl(d, *args)


def _ca(d, name):
    _ossl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
          "-keyout", name + ".key", "-out", name + ".pem", "-days", "2", "-subj", "/CN=wschat test " + name)


def make(d):
    """Writes the files into directory d; returns their paths."""
    _ca(d, "ca")
    _ca(d, "otherca")
    server_ext = "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
    client_ext = "extendedKeyUsage=clientAuth\n"
    for name, serial in (("server", SERIAL), ("server2", SERIAL2)):
        _key_csr(d, name, "localhost")
        _sign(d, name, "ca", serial, 2, server_ext)
    _key_csr(d, "client", "alice")
    _sign(d, "client", "ca", 0x2001, 2, client_ext)
    _key_csr(d, "expired", "mallory")
    _sign(d, "expired", "ca", 0x2002, -1, client_ext)  # notAfter: yesterday
    _key_csr(d, "stranger", "eve")
    _sign(d, "stranger", "otherca", 0x2003, 2, client_ext)
    p = lambda n: os.path.join(d, n)  # noqa: E731
    return types.SimpleNamespace(
        dir=d, ca=p("ca.pem"),
        cert=p("server.pem"), key=p("server.key"), cert2=p("server2.pem"), key2=p("server2.key"),
        client=(p("client.pem"), p("client.key")), expired=(p("expired.pem"), p("expired.key")),
        stranger=(p("stranger.pem"), p("stranger.key")))


def client_context(certs, client=None, **kw):
    """An ssl context that trusts the test CA (and presents client, a (cert,
    key) pair, if given)."""
    ctx = ssl.create_default_context(cafile=certs.ca)
    for k, v in kw.items():
        setattr(ctx, k, v)
    if client:
        ctx.load_cert_chain(*client)
    return ctx


def spki_hash(cert_path):
    """base64 SHA-256 of the certificate's public key (Chromium's
    --ignore-certificate-errors-spki-list)."""
    pem = open(cert_path).read()
    der = ssl.PEM_cert_to_DER_cert(pem)
    pub = subprocess.run(["openssl", "x509", "-inform", "der", "-pubkey", "-noout"], input=der,
                         capture_output=True, check=True, timeout=10).stdout
    spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub,
                          capture_output=True, check=True, timeout=10).stdout
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()
