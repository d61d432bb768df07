// `moonwire new NAME`: a folder with a working app (a route, a JSON API, a WebSocket echo), a
// page, a test file that passes, and a README of the three commands, so that a new project
// starts from something that runs and is tested.
import ArgumentParser
import Foundation

struct New: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create a new project in the folder NAME.")

    @Argument(help: "The folder to create (it must not exist).")
    var name: String

    func run() throws {
        guard !FileManager.default.fileExists(atPath: name) else {
            print("\(name) already exists")
            throw ExitCode(1)
        }
        let title = (name as NSString).lastPathComponent
        for (path, text) in Self.files(title: title) {
            let full = (name as NSString).appendingPathComponent(path)
            try FileManager.default.createDirectory(
                atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: full, atomically: true, encoding: .utf8)
        }
        print("created \(name): cd \(name) && moonwire test && moonwire serve")
    }

    /// The files of a new project, by path.
    static func files(title: String) -> [(String, String)] {
        [
            ("scripts/main.lua", mainLua(title: title)),
            ("www/index.html", indexHTML(title: title)),
            ("tests/app_test.lua", appTest),
            ("README.md", readme(title: title)),
        ]
    }

    private static func mainLua(title: String) -> String {
        """
        -- \(title): a Moonwire app. Every global function named On... is an event the server
        -- calls; routes are declared here, while the scripts load. The Lua API is in
        -- docs/lua-api.md of the Moonwire sources.

        -- A route: /hello/<name>, the name captured from the path.
        moonwire.get([[/hello/(?<name>\\w+)]], function(req, res)
          res:send("Hello, " .. req.params.name .. "!\\n")
        end)

        -- A JSON API: a counter kept in moonwire.shared (seen by every event loop).
        moonwire.get("/api/count", function(req, res)
          res:json{ count = moonwire.shared:get("count") or 0 }
        end)

        moonwire.post("/api/count", function(req, res)
          local body = moonwire.json.decode(req.body) or {}
          local by = math.tointeger(body.by) or 1
          res:json{ count = moonwire.shared:incr("count", by) }
        end)

        -- A WebSocket echo at /echo: every text message comes back.
        function OnHandshake(req, res)
          if req.path ~= "/echo" then res.status = 404 end
        end

        function OnMessage(ws, text)
          ws:send(text)
        end

        """
    }

    private static func indexHTML(title: String) -> String {
        """
        <!doctype html>
        <html lang="en">
        <head><meta charset="utf-8"><title>\(title)</title></head>
        <body>
          <h1>\(title)</h1>
          <p>Served from <code>www/</code>. Try <a href="/hello/world">/hello/world</a> and
             <a href="/api/count">/api/count</a>.</p>
          <p>Echo: <input id="text" value="hi"> <button id="send">send</button> <span id="echo"></span></p>
          <script>
            const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/echo");
            ws.onmessage = (event) => { document.getElementById("echo").textContent = event.data; };
            document.getElementById("send").onclick = () => ws.send(document.getElementById("text").value);
          </script>
        </body>
        </html>

        """
    }

    private static let appTest = """
        -- Tests of the app: `moonwire test` runs every tests/*_test.lua against the app, each file
        -- with a server of its own. docs/testing.md describes the `t` every test receives.

        function test_hello(t)
          local r = t.get("/hello/world")
          t.eq(r.status, 200)
          t.eq(r.body, "Hello, world!\\n")
        end

        function test_count(t)
          t.eq(t.get("/api/count").json, { count = 0 })
          t.eq(t.post("/api/count", { by = 2 }).json, { count = 2 })
          t.eq(t.get("/api/count").json.count, 2)
        end

        function test_echo(t)
          local ws = t.websocket("/echo")
          ws:send("ping")
          t.eq(ws:receive(), "ping")
          ws:close()
        end

        function test_index_page(t)
          local r = t.get("/")
          t.eq(r.status, 200)
          t.match(r.body, "<h1>.+</h1>")
        end

        function test_unknown_path(t)
          t.eq(t.get("/nothing-here").status, 404)
        end

        """

    private static func readme(title: String) -> String {
        """
        # \(title)

        A Moonwire app: Lua handlers in `scripts/`, static files in `www/`, tests in `tests/`.

        ```sh
        moonwire serve    # http://127.0.0.1:8080: /, /hello/world, /api/count, ws://127.0.0.1:8080/echo
        moonwire test     # runs tests/*_test.lua against the app
        moonwire check    # loads the scripts and reports errors with file:line
        ```

        Edit `scripts/main.lua` while `moonwire serve` runs: the scripts reload on save.

        """
    }
}
