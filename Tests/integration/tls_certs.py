"""Certificates for the TLS and HTTP/2 tests, made with the `openssl` CLI into a tmp folder (the
`certs` fixture in conftest.py makes them once per session), and the helpers both suites share:
a TLS listener in the Lua source, and Python client contexts.

One test CA signs the server leaves ("localhost" with SAN DNS:localhost, IP:127.0.0.1, IP:::1;
"a.test"; "b.test") and two client certificates ("CN=good-client", "CN=blocked-client"); a
second CA, which no server trusts, signs "CN=untrusted-client". Keys are EC P-256: instant to
make, and every TLS stack reads them."""
import base64
import dataclasses
import hashlib
import pathlib
import socket
import ssl
import subprocess
import warnings

from harness import free_port

DAYS = "2"


@dataclasses.dataclass(frozen=True)
class Pair:
    """A certificate and its private key, both PEM files."""
    cert: pathlib.Path
    key: pathlib.Path


@dataclasses.dataclass(frozen=True)
class Certificates:
    ca: pathlib.Path               # the trusted CA's certificate (what clients and servers trust)
    untrusted_ca: pathlib.Path     # a CA nobody trusts
    localhost: Pair
    a_test: Pair
    b_test: Pair
    good_client: Pair
    blocked_client: Pair           # signed by the trusted CA; the tests' OnSSLVerifyPeer refuses it
    untrusted_client: Pair         # signed by untrusted_ca


def openssl(*arguments, cwd):
    result = subprocess.run(["openssl", *arguments], cwd=cwd, capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(arguments)} failed:\n{result.stderr}")


def make_key_and_request(folder, name, subject):
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=folder)


def make_ca(folder, name, common_name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", DAYS, "-subj", f"/CN={common_name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    return Pair(folder / f"{name}.pem", folder / f"{name}.key")


def sign(folder, ca, name, subject, extensions):
    make_key_and_request(folder, name, subject)
    (folder / f"{name}.ext").write_text("\n".join(extensions) + "\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", str(ca.cert), "-CAkey", str(ca.key),
            "-CAcreateserial", "-out", f"{name}.pem", "-days", DAYS, "-sha256",
            "-extfile", f"{name}.ext", cwd=folder)
    return Pair(folder / f"{name}.pem", folder / f"{name}.key")


def server_leaf(folder, ca, name, common_name, alt_names):
    return sign(folder, ca, name, f"/CN={common_name}", [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        "extendedKeyUsage=serverAuth",
        f"subjectAltName={alt_names}",
    ])


def client_leaf(folder, ca, name, common_name):
    return sign(folder, ca, name, f"/CN={common_name}", [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature",
        "extendedKeyUsage=clientAuth",
    ])


def make_certificates(folder):
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ca = make_ca(folder, "ca", "Moonwire Test CA")
    other = make_ca(folder, "untrusted-ca", "Untrusted Test CA")
    return Certificates(
        ca=ca.cert,
        untrusted_ca=other.cert,
        localhost=server_leaf(folder, ca, "localhost", "localhost", "DNS:localhost,IP:127.0.0.1,IP:::1"),
        a_test=server_leaf(folder, ca, "a.test", "a.test", "DNS:a.test"),
        b_test=server_leaf(folder, ca, "b.test", "b.test", "DNS:b.test"),
        good_client=client_leaf(folder, ca, "good-client", "good-client"),
        blocked_client=client_leaf(folder, ca, "blocked-client", "blocked-client"),
        untrusted_client=client_leaf(folder, other, "untrusted-client", "untrusted-client"),
    )


# --- Lua source ----------------------------------------------------------------------------

def spki_sha256(certificate):
    """The base64 SHA-256 of a certificate's public key: Chromium's
    --ignore-certificate-errors-spki-list trusts a server whose key it names, as a CA would."""
    pem = subprocess.run(["openssl", "x509", "-in", str(certificate), "-noout", "-pubkey"], capture_output=True,
                         check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pem, capture_output=True,
                         check=True).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def lua(value):
    """A Python str or path as a Lua string literal."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def tls_table(pair, **extra):
    """The Lua `tls={...}` table for a certificate pair, plus extra string fields."""
    fields = [f"cert = {lua(pair.cert)}", f"key = {lua(pair.key)}"]
    fields += [f"{name} = {lua(value)}" for name, value in extra.items()]
    return "{ " + ", ".join(fields) + " }"


def listen_line(port, pair, **extra):
    return f'moonwire.listen{{ host = "127.0.0.1", port = {port}, tls = {tls_table(pair, **extra)} }}\n'


def start_tls(moonwire, certs, main="", pair=None, **tls_and_options):
    """Starts moonwire with a TLS listener on a free port (its Lua source first, then `main`)
    and waits for its `listening on https://` line. Keyword arguments that are TLS fields
    (min_version, client_ca, verify_peer) go into the tls table, the others to the fixture.
    The server gains `tls_port` and `tls_url`."""
    tls_fields = {name: tls_and_options.pop(name) for name in ("min_version", "client_ca", "verify_peer")
                  if name in tls_and_options}
    port = free_port()
    server = moonwire(listen_line(port, pair or certs.localhost, **tls_fields) + main, **tls_and_options)
    assert server.wait_for_log(f"listening on https://127.0.0.1:{port}", timeout=10), server.log()
    server.tls_port = port
    server.tls_url = f"https://127.0.0.1:{port}"
    return server


# --- Python clients ------------------------------------------------------------------------

def handshake(port, context, server_hostname="localhost"):
    """A TLS handshake only: (version, ALPN protocol, peer certificate as a dict)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=server_hostname) as tls:
            return tls.version(), tls.selected_alpn_protocol(), tls.getpeercert()


def common_name(peer):
    return dict(pair[0] for pair in peer["subject"])["commonName"]


def client_context(certs, alpn=None, client=None, minimum=None, maximum=None, check_hostname=True):
    """An ssl client context trusting the test CA; `client` is a Pair to present."""
    context = ssl.create_default_context(cafile=str(certs.ca))
    context.check_hostname = check_hostname
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # TLS 1.0/1.1 are deprecated, on purpose
        if minimum is not None:
            if minimum < ssl.TLSVersion.TLSv1_2:
                context.set_ciphers("DEFAULT:@SECLEVEL=0")      # OpenSSL 3 needs this to offer TLS < 1.2
            context.minimum_version = minimum
        if maximum is not None:
            if maximum < ssl.TLSVersion.TLSv1_2:
                context.set_ciphers("DEFAULT:@SECLEVEL=0")
            context.maximum_version = maximum
    if alpn is not None:
        context.set_alpn_protocols(alpn)
    if client is not None:
        context.load_cert_chain(str(client.cert), str(client.key))
    return context
