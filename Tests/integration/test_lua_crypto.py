"""The crypto helpers and moonwire.jwt from a real handler: digests, HMACs, base64 and URL
encoding against Python's own libraries; JWTs signed by the server checked by PyJWT and the
other way round (HS256, RS256, ES256); and the tokens a verifier must refuse (expired, wrong
signature, alg none, an algorithm it did not allow) answered 401 with the reason."""
import base64
import hashlib
import hmac
import time
import urllib.parse
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

SECRET = "integration-secret-0123456789abcdef"


def pem_pair(private):
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private_pem, public_pem


RSA_PRIVATE, RSA_PUBLIC = pem_pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))
EC_PRIVATE, EC_PUBLIC = pem_pair(ec.generate_private_key(ec.SECP256R1()))

APP = f"""
local keys = {{
  HS256 = {{sign = {{secret = [[{SECRET}]]}}, verify = {{secret = [[{SECRET}]]}}}},
  RS256 = {{sign = {{private_key = [[{RSA_PRIVATE}]]}}, verify = {{public_key = [[{RSA_PUBLIC}]]}}}},
  ES256 = {{sign = {{private_key = [[{EC_PRIVATE}]]}}, verify = {{public_key = [[{EC_PUBLIC}]]}}}},
}}
local c = moonwire.crypto

moonwire.post("/helpers", function(req, res)
  local input = req.body
  res:json{{
    sha256 = c.hex(c.sha256(input)),
    sha1 = c.hex(c.sha1(input)),
    hmac256 = c.hex(c.hmac("sha256", "key", input)),
    hmac512 = c.hex(c.hmac("sha512", "key", input)),
    b64 = moonwire.base64.encode(input),
    b64url = moonwire.base64.encode(input, true),
    url = moonwire.url.encode(input),
    random = c.hex(c.random(16)),
    uuid = moonwire.uuid(),
    equal = c.equals(input, input) and not c.equals(input, input .. "x"),
  }}
end)

moonwire.post("/decode", function(req, res)
  local value, err = moonwire.base64.decode(req.body, req.query.url == "1")
  if not value then res.status = 400 return res:send(err) end
  res:send(value)
end)

moonwire.post("/sign/(?<alg>[A-Z0-9]+)", function(req, res)
  local claims = moonwire.json.decode(req.body)
  local options = {{alg = req.params.alg}}
  for k, v in pairs(keys[req.params.alg].sign) do options[k] = v end
  res:send(moonwire.jwt.sign(claims, options))
end)

-- Verifies the Bearer token with the key of ?alg= (default HS256), allowing only that algorithm.
moonwire.get("/me", function(req, res)
  local alg = req.query.alg or "HS256"
  local token = (req:header("authorization") or ""):match("^Bearer%s+(.+)$")
  local options = {{algorithms = {{alg}}, audience = req.query.aud}}
  for k, v in pairs(keys[alg].verify) do options[k] = v end
  local claims, err = moonwire.jwt.verify(token, options)
  if not claims then
    res.status = 401
    res:header("WWW-Authenticate", 'Bearer error="invalid_token"')
    return res:send(err)
  end
  res:json(claims)
end)
"""


@pytest.fixture(scope="module")
def server(moonwire_module):
    return moonwire_module(APP)


@pytest.mark.parametrize("text", [b"", b"abc", b"hello world \x00\xff\xfe", bytes(range(256)) * 4])
def test_helpers_agree_with_python(server, text):
    reply = server.request("POST", "/helpers", content=text)
    assert reply.status_code == 200, reply.text
    got = reply.json()
    assert got["sha256"] == hashlib.sha256(text).hexdigest()
    assert got["sha1"] == hashlib.sha1(text).hexdigest()
    assert got["hmac256"] == hmac.new(b"key", text, hashlib.sha256).hexdigest()
    assert got["hmac512"] == hmac.new(b"key", text, hashlib.sha512).hexdigest()
    if text == text.decode("utf-8", "ignore").encode():
        # JSON strings hold text; the binary inputs are checked through /decode below.
        assert got["b64"] == base64.b64encode(text).decode()
        assert got["b64url"] == base64.urlsafe_b64encode(text).decode().rstrip("=")
        assert got["url"] == urllib.parse.quote(text, safe="-._~")
    assert len(got["random"]) == 32
    assert uuid.UUID(got["uuid"]).version == 4
    assert got["equal"] is True


def test_base64_decoding_round_trips_bytes_and_refuses_bad_input(server):
    data = bytes(range(256)) * 3
    assert server.request("POST", "/decode", content=base64.b64encode(data)).content == data
    url_form = base64.urlsafe_b64encode(data).rstrip(b"=")
    assert server.request("POST", "/decode?url=1", content=url_form).content == data
    for bad in (b"Zg=", b"not base64!", b"Zm9v\n"):
        reply = server.request("POST", "/decode", content=bad)
        assert reply.status_code == 400 and reply.text == "moonwire.base64.decode: invalid base64 input"


PYJWT_KEYS = {"HS256": (SECRET, SECRET), "RS256": (RSA_PRIVATE, RSA_PUBLIC), "ES256": (EC_PRIVATE, EC_PUBLIC)}


@pytest.mark.parametrize("alg", list(PYJWT_KEYS))
def test_server_tokens_verify_in_pyjwt(server, alg):
    claims = {"sub": "user-7", "exp": int(time.time()) + 60, "roles": ["a", "b"]}
    reply = server.request("POST", f"/sign/{alg}", json=claims)
    assert reply.status_code == 200, reply.text
    token = reply.text
    assert jwt.get_unverified_header(token)["alg"] == alg
    assert jwt.decode(token, PYJWT_KEYS[alg][1], algorithms=[alg]) == claims


@pytest.mark.parametrize("alg", list(PYJWT_KEYS))
def test_pyjwt_tokens_verify_in_the_server(server, alg):
    token = jwt.encode({"sub": "user-9", "exp": int(time.time()) + 60, "aud": "api"}, PYJWT_KEYS[alg][0], algorithm=alg)
    reply = server.get(f"/me?alg={alg}&aud=api", headers={"authorization": f"Bearer {token}"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["sub"] == "user-9"


def refusal(server, token, query=""):
    reply = server.get("/me" + query, headers={"authorization": f"Bearer {token}"})
    assert reply.status_code == 401
    assert reply.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    return reply.text


def test_refused_tokens_get_401_with_the_reason(server):
    now = int(time.time())
    assert refusal(server, jwt.encode({"sub": "x", "exp": now - 10}, SECRET, algorithm="HS256")) == "token expired"
    assert refusal(server, jwt.encode({"sub": "x", "nbf": now + 600}, SECRET, algorithm="HS256")) == "token not valid yet (nbf)"
    assert refusal(server, jwt.encode({"sub": "x"}, "another secret", algorithm="HS256")) == "signature mismatch"
    assert refusal(server, jwt.encode({"sub": "admin"}, None, algorithm="none")) == "alg none is refused"
    assert refusal(server, jwt.encode({"sub": "x"}, SECRET, algorithm="HS512")) == "algorithm HS512 is not allowed"
    # An RS256 endpoint handed an HS256 token made with the public key as the secret.
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
    body = base64.urlsafe_b64encode(b'{"sub":"admin"}').rstrip(b"=")
    signature = base64.urlsafe_b64encode(hmac.new(RSA_PUBLIC.encode(), header + b"." + body, hashlib.sha256).digest()).rstrip(b"=")
    confused = (header + b"." + body + b"." + signature).decode()
    assert refusal(server, confused, "?alg=RS256") == "algorithm HS256 is not allowed"
    assert refusal(server, jwt.encode({"aud": "web"}, SECRET, algorithm="HS256"), "?aud=api") == "wrong audience"
    assert refusal(server, "not.a.token").startswith("malformed token")
    no_token = server.get("/me")
    assert no_token.status_code == 401 and no_token.text == "no token (got nil)"
    tampered = jwt.encode({"sub": "user"}, SECRET, algorithm="HS256").split(".")
    tampered[1] = base64.urlsafe_b64encode(b'{"sub":"admin"}').rstrip(b"=").decode()
    assert refusal(server, ".".join(tampered)) == "signature mismatch"
