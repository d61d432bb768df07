import XCTest

@testable import MoonwireLua

/// moonwire.crypto, moonwire.base64, moonwire.url, moonwire.uuid and moonwire.limit, checked in
/// Lua against published vectors (FIPS 180 examples, RFC 2202, RFC 4231, RFC 4648).
final class LuaCryptoTests: XCTestCase {
    private var scripts: ScriptsFolder!

    override func setUpWithError() throws { scripts = try ScriptsFolder() }
    override func tearDown() { scripts = nil }

    private func run(_ source: String) throws {
        try scripts.makeVM().run(source: "local c, hex = moonwire.crypto, moonwire.crypto.hex\n" + source, name: "crypto")
    }

    func testDigestsAreRawBytesMatchingTheVectors() throws {
        try run(#"""
            assert(#c.sha256("abc") == 32 and #c.sha1("abc") == 20)
            assert(hex(c.sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
            assert(hex(c.sha256("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
            assert(hex(c.sha1("abc")) == "a9993e364706816aba3e25717850c26c9cd0d89d")
            assert(hex(c.sha256("a\0b")) ~= hex(c.sha256("a")), "bytes after a NUL count")
            assert(hex("\0\255\16") == "00ff10")
            """#)
    }

    func testHMACMatchesRFC4231AndRFC2202() throws {
        try run(#"""
            local key, data = string.rep("\x0b", 20), "Hi There"
            assert(hex(c.hmac("sha256", key, data)) == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
            assert(hex(c.hmac("sha384", key, data)) == "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6")
            assert(hex(c.hmac("sha512", key, data)) == "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854")
            assert(hex(c.hmac("sha256", "Jefe", "what do ya want for nothing?")) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
            assert(hex(c.hmac("sha1", "Jefe", "what do ya want for nothing?")) == "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
            -- RFC 4231 case 6: a key longer than the block size is hashed first
            assert(hex(c.hmac("sha256", string.rep("\xaa", 131), "Test Using Larger Than Block-Size Key - Hash Key First")) == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
            local ok, err = pcall(c.hmac, "md5", "k", "m")
            assert(not ok and err:find("moonwire.crypto.hmac: unknown algorithm md5", 1, true), err)
            ok, err = pcall(c.hmac, "sha256", nil, "m")
            assert(not ok and err:find("expected a string as argument 2", 1, true), err)
            """#)
    }

    func testRandomAndUUIDComeFromTheCSPRNG() throws {
        try run(#"""
            assert(c.random(0) == "" and #c.random(32) == 32 and #c.random(65536) == 65536)
            assert(c.random(32) ~= c.random(32))
            for _, bad in ipairs({-1, 65537, 1.5, "8"}) do
              local ok, err = pcall(c.random, bad)
              assert(not ok and err:find("moonwire.crypto.random: expected a whole number", 1, true), tostring(bad))
            end
            local seen = {}
            for _ = 1, 200 do
              local id = moonwire.uuid()
              assert(id:match("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"), id)
              assert(id == id:lower() and not seen[id])
              seen[id] = true
            end
            """#)
    }

    func testEqualsComparesBytes() throws {
        try run(#"""
            assert(c.equals("", "") and c.equals("abc", "abc") and c.equals("a\0b", "a\0b"))
            assert(not c.equals("abc", "abd") and not c.equals("abc", "ab") and not c.equals("a\0b", "a\0c"))
            local mac = c.hmac("sha256", "k", "m")
            assert(c.equals(mac, c.hmac("sha256", "k", "m")) and not c.equals(mac, c.hmac("sha256", "k", "n")))
            local ok, err = pcall(c.equals, "a", 1)
            assert(not ok and err:find("moonwire.crypto.equals: expected a string as argument 2", 1, true), err)
            """#)
    }

    func testBase64MatchesRFC4648AndRefusesBadInput() throws {
        try run(#"""
            local b = moonwire.base64
            local vectors = {[""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==", fooba = "Zm9vYmE=", foobar = "Zm9vYmFy"}
            for plain, encoded in pairs(vectors) do
              assert(b.encode(plain) == encoded, plain)
              assert(b.decode(encoded) == plain, encoded)
              assert(b.encode(plain, true) == encoded:gsub("=", ""), plain)
              assert(b.decode(encoded:gsub("=", ""), true) == plain, encoded)
              assert(b.decode(encoded, true) == plain, "padding is allowed in the URL-safe form")
            end
            assert(b.encode("\251\255") == "+/8=" and b.encode("\251\255", true) == "-_8")
            assert(b.decode("-_8", true) == "\251\255" and b.decode("+/8=") == "\251\255")
            local all = {}
            for i = 0, 255 do all[#all + 1] = string.char(i) end
            all = table.concat(all)
            assert(b.decode(b.encode(all)) == all and b.decode(b.encode(all, true), true) == all)
            for _, bad in ipairs({"Zg=", "Zm9v!", "Zg", "Z", "Zm 9v", "-_8=", "Zg==Zg==", "Zm9v\n", "Zg=a", "Zm9=v"}) do
              local value, err = b.decode(bad)
              assert(value == nil and err == "moonwire.base64.decode: invalid base64 input", bad)
            end
            for _, bad in ipairs({"+/8", "Z", "Zm9v!", "Zm9vY", "Zg=a"}) do
              local value, err = b.decode(bad, true)
              assert(value == nil and err == "moonwire.base64.decode: invalid base64url input", bad)
            end
            assert(not pcall(b.encode, nil) and not pcall(b.decode, {}))
            """#)
    }

    func testURLEncodingRoundTripsAndQueriesMatchReqQuery() throws {
        try run(#"""
            local u = moonwire.url
            assert(u.encode("a b&c=d/é~-._") == "a%20b%26c%3Dd%2F%C3%A9~-._")
            assert(u.decode("a%20b%26c%3dd%2F%C3%A9+") == "a b&c=d/é+")
            local all = {}
            for i = 0, 255 do all[#all + 1] = string.char(i) end
            all = table.concat(all)
            assert(u.decode(u.encode(all)) == all)
            for _, bad in ipairs({"%", "%2", "%zz", "a%g1"}) do
              local value, err = u.decode(bad)
              assert(value == nil and err == "moonwire.url.decode: malformed %-escape", bad)
            end
            local q = u.parse_query("?a=1&a=2&b=x+y&c=%26&flag")
            assert(q.a[1] == "1" and q.a[2] == "2" and q.b == "x y" and q.c == "&" and q.flag == true)
            assert(u.build_query{b = "x y", a = {"1", "2"}, flag = true, off = false, n = 3} == "a=1&a=2&b=x%20y&flag&n=3")
            assert(u.build_query{} == "")
            local back = u.parse_query(u.build_query{["k é"] = "v&=", list = {"x", "y"}})
            assert(back["k é"] == "v&=" and back.list[2] == "y")
            local ok, err = pcall(u.build_query, {a = {}})
            assert(ok and err == "", "an empty list gives no pair")
            ok, err = pcall(u.build_query, {a = print})
            assert(not ok and err:find("moonwire.url.build_query: the value of a must be", 1, true), err)
            """#)
    }

    func testLimitSpendsTheRuntimesBucketsAndChecksItsArguments() throws {
        try run(#"""
            assert(moonwire.limit("k", 1, 2) == true and moonwire.limit("k", 1, 2) == true)
            local ok, retry = moonwire.limit("k", 1, 2)
            assert(ok == false and retry > 0.9 and retry <= 1, retry)
            for _, args in ipairs({{nil, 1, 1}, {"k", 0, 1}, {"k", 1, 0.5}, {"k", "1", 1}, {string.rep("x", 1025), 1, 1}, {"k", 1/0, 1}}) do
              local ok, err = pcall(moonwire.limit, table.unpack(args, 1, 3))
              assert(not ok and err:find("moonwire.limit: ", 1, true), err)
            end
            """#)
        XCTAssertThrowsError(try scripts.makeVM().run(source: "moonwire.limit('k', 1, 1)", name: "top", as: .load)) { error in
            XCTAssertTrue("\(error)".contains("moonwire.limit may not be called while the scripts load"), "\(error)")
        }
    }
}
