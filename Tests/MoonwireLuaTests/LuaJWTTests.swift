import Crypto
import XCTest
import _CryptoExtras

@testable import MoonwireLua

/// moonwire.jwt: published tokens (RFC 7515 appendix A.1, jwt.io's example), tokens signed and
/// checked with keys made here, and the refusals a verifier owes: alg none, an algorithm the
/// caller did not allow or that does not fit the key, a bad signature, exp, nbf, aud, iss.
final class LuaJWTTests: XCTestCase {
    private var scripts: ScriptsFolder!

    override func setUpWithError() throws { scripts = try ScriptsFolder() }
    override func tearDown() { scripts = nil }

    private func run(_ source: String, keys: [String: String] = [:]) throws {
        let prelude = keys.map { "local \($0.key) = [==[\($0.value)]==]\n" }.joined()
        try scripts.makeVM().run(source: prelude + "local jwt = moonwire.jwt\n" + source, name: "jwt")
    }

    func testPublishedHS256Tokens() throws {
        try run(#"""
            -- RFC 7515 A.1: the key is a JWK's base64url "k"; the token expired in 2011.
            local key = moonwire.base64.decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow", true)
            local rfc = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
            local claims, err = jwt.verify(rfc, {secret = key})
            assert(claims == nil and err == "token expired", err)
            claims = assert(jwt.verify(rfc, {secret = key, leeway = 1e10, issuer = "joe"}))
            assert(claims.iss == "joe" and claims["http://example.com/is_root"] == true and claims.exp == 1300819380)
            assert(select(2, jwt.verify(rfc, {secret = key, leeway = 1e10, issuer = "ann"})) == "wrong issuer")
            assert(select(2, jwt.verify(rfc, {secret = "other", leeway = 1e10})) == "signature mismatch")

            local example = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
            claims = assert(jwt.verify(example, {secret = "your-256-bit-secret"}))
            assert(claims.sub == "1234567890" and claims.name == "John Doe" and claims.iat == 1516239022)
            """#)
    }

    func testSignedTokensVerifyWithEveryAlgorithmAndKeyKind() throws {
        let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let p256 = P256.Signing.PrivateKey(), p384 = P384.Signing.PrivateKey(), p521 = P521.Signing.PrivateKey()
        try run(
            #"""
            local now = os.time()
            local claims = {sub = "42", exp = now + 60, nested = {roles = {"a", "b"}}}
            for _, alg in ipairs({"HS256", "HS384", "HS512"}) do
              local token = jwt.sign(claims, {secret = "s3cret", alg = alg})
              local back = assert(jwt.verify(token, {secret = "s3cret", algorithms = {alg}}))
              assert(back.sub == "42" and back.nested.roles[2] == "b")
              local _, err = jwt.verify(token, {secret = "s3cret"})
              if alg == "HS256" then assert(err == nil, err) else assert(err == "algorithm " .. alg .. " is not allowed", err) end
            end
            local pairs_ = {{rsa, rsa_pub, {"RS256", "RS384", "RS512"}}, {p256, p256_pub, {"ES256"}}, {p384, p384_pub, {"ES384"}}, {p521, p521_pub, {"ES512"}}}
            for _, case in ipairs(pairs_) do
              for _, alg in ipairs(case[3]) do
                local token = jwt.sign(claims, {private_key = case[1], alg = alg})
                assert(jwt.verify(token, {public_key = case[2], algorithms = {alg}}).sub == "42", alg)
                assert(select(2, jwt.verify(token .. "x", {public_key = case[2], algorithms = {alg}})), alg)
              end
              -- With no algorithms given, the key's own first algorithm is the one allowed.
              assert(jwt.verify(jwt.sign(claims, {private_key = case[1]}), {public_key = case[2]}).sub == "42")
            end
            -- A token signed by another key of the same kind.
            local other = jwt.sign(claims, {private_key = p256})
            assert(select(2, jwt.verify(other, {public_key = rsa_pub, algorithms = {"ES256", "RS256"}})) == "algorithm ES256 does not match the key")
            local header, body = jwt.sign(claims, {private_key = rsa}):match("^([^.]+)%.([^.]+)%.")
            local forged = header .. "." .. body .. "." .. moonwire.base64.encode(string.rep("\0", 256), true)
            assert(select(2, jwt.verify(forged, {public_key = rsa_pub})) == "signature mismatch")
            """#,
            keys: [
                "rsa": rsa.pemRepresentation, "rsa_pub": rsa.publicKey.pemRepresentation,
                "p256": p256.pemRepresentation, "p256_pub": p256.publicKey.pemRepresentation,
                "p384": p384.pemRepresentation, "p384_pub": p384.publicKey.pemRepresentation,
                "p521": p521.pemRepresentation, "p521_pub": p521.publicKey.pemRepresentation,
            ])
    }

    func testRefusedTokens() throws {
        let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        try run(
            #"""
            local b64 = function(s) return moonwire.base64.encode(s, true) end
            local now = os.time()
            local function refused(token, options, expected)
              local claims, err = jwt.verify(token, options)
              assert(claims == nil and err == expected, tostring(err) .. " (expected " .. expected .. ")")
            end
            local key = {secret = "k"}
            local body = b64(moonwire.json.encode{sub = "x"})
            refused(b64('{"alg":"none"}') .. "." .. body .. ".", key, "alg none is refused")
            refused(b64('{"alg":"NONE"}') .. "." .. body .. ".", {secret = "k", algorithms = {"HS256"}}, "alg none is refused")
            refused(b64('{"alg":"HS999"}') .. "." .. body .. ".c2ln", key, "unsupported algorithm HS999")
            refused(b64('{"typ":"JWT"}') .. "." .. body .. ".c2ln", key, "malformed token: the header has no alg")
            -- The classic confusion: an RS256 public key used as an HMAC secret.
            local confused = jwt.sign({sub = "x"}, {secret = rsa_pub})
            refused(confused, {public_key = rsa_pub, algorithms = {"RS256", "HS256"}}, "algorithm HS256 does not match the key")
            refused(jwt.sign({exp = now - 5}, key), key, "token expired")
            assert(jwt.verify(jwt.sign({exp = now - 5}, key), {secret = "k", leeway = 30}))
            refused(jwt.sign({nbf = now + 60}, key), key, "token not valid yet (nbf)")
            assert(jwt.verify(jwt.sign({nbf = now + 5}, key), {secret = "k", leeway = 30}))
            refused(jwt.sign({exp = "soon"}, key), key, "malformed token: exp is not a number")
            refused(jwt.sign({aud = "api"}, key), key, "the token names an audience (aud) and no audience option was given")
            refused(jwt.sign({aud = "api"}, key), {secret = "k", audience = "web"}, "wrong audience")
            assert(jwt.verify(jwt.sign({aud = {"web", "api"}}, key), {secret = "k", audience = "api"}))
            assert(jwt.verify(jwt.sign({aud = "api"}, key), {secret = "k", audience = {"web", "api"}}))
            refused(jwt.sign({}, key), {secret = "k", audience = "api"}, "wrong audience")
            refused(jwt.sign({}, key), {secret = "k", issuer = "me"}, "wrong issuer")
            local crit = b64('{"alg":"HS256","crit":["exp"]}') .. "." .. body
            refused(crit .. "." .. b64(moonwire.crypto.hmac("sha256", "k", crit)), key, "the header has critical extensions (crit), which are not understood")
            local array = b64('{"alg":"HS256"}') .. "." .. b64("[1]")
            refused(array .. "." .. b64(moonwire.crypto.hmac("sha256", "k", array)), key, "malformed token: the claims is not a JSON object")
            for _, bad in ipairs({"", "a.b", "a.b.c.d", "!!.x.y", b64("{") .. "." .. body .. ".x"}) do
              local claims, err = jwt.verify(bad, key)
              assert(claims == nil and err:find("^malformed token"), bad .. ": " .. tostring(err))
            end
            refused(nil, key, "no token (got nil)")
            refused(string.rep("a", 70000), key, "token longer than 65536 bytes")
            """#, keys: ["rsa_pub": rsa.publicKey.pemRepresentation])
    }

    func testBadCallsRaise() throws {
        try run(#"""
            local function raises(fn, expected)
              local ok, err = pcall(fn)
              assert(not ok and err:find(expected, 1, true), tostring(err) .. " (expected " .. expected .. ")")
            end
            raises(function() jwt.verify("t") end, "moonwire.jwt.verify: expected an options table")
            raises(function() jwt.verify("t", {}) end, "moonwire.jwt.verify: expected a key: secret = ... or public_key = ... (PEM)")
            raises(function() jwt.verify("t", {secret = "a", public_key = "b"}) end, "give secret or public_key, not both")
            raises(function() jwt.verify("t", {secret = ""}) end, "secret must not be empty")
            raises(function() jwt.verify("t", {public_key = "nope"}) end, "public_key is not a PEM")
            raises(function() jwt.verify("t", {secret = "k", algorithms = {"none"}}) end, "alg none is never accepted")
            raises(function() jwt.verify("t", {secret = "k", algorithms = "HS256"}) end, "algorithms must be a list")
            raises(function() jwt.verify("t", {secret = "k", leeway = -1}) end, "leeway must be a number")
            raises(function() jwt.verify("t", {secret = "k", audiences = "x"}) end, "unknown option audiences")
            raises(function() jwt.sign({}, {secret = "k", alg = "RS256"}) end, "alg RS256 does not match the key")
            raises(function() jwt.sign({}, {secret = "k", alg = "none"}) end, "alg none is never accepted")
            raises(function() jwt.sign({1, 2}, {secret = "k"}) end, "claims must be a table with string keys")
            raises(function() jwt.sign("x", {secret = "k"}) end, "expected a claims table")
            raises(function() jwt.sign({}, {private_key = "x"}) end, "private_key is not a PEM")
            """#)
    }
}
