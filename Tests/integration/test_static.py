"""Static files from the www folder when no handler answered."""
import pytest


@pytest.fixture
def server(moonwire):
    return moonwire("""
        function OnBeforeCommand(req, res) res:header("Access-Control-Allow-Origin", "*") end
        function OnCommandGet(req, res)
          if req.path == "/dynamic" then res:send("from lua") end
          if req.path == "/sendfile" then res:file("site.css") end
        end
    """)


def test_serves_files_with_types(server):
    reply = server.get("/site.css")
    assert reply.status_code == 200 and "color" in reply.text
    assert reply.headers["content-type"] == "text/css; charset=utf-8"
    assert server.get("/data.json").headers["content-type"] == "application/json"
    blob = server.get("/blob.bin")
    assert blob.content == bytes(range(256)) * 4
    assert blob.headers["content-type"] == "application/octet-stream"


def test_index_and_folder_redirect(server):
    assert "home page" in server.get("/").text
    assert "docs index" in server.get("/docs/").text
    reply = server.get("/docs")
    assert reply.status_code == 301 and reply.headers["location"] == "/docs/"


def test_handlers_win_and_headers_carry_over(server):
    assert server.get("/dynamic").text == "from lua"
    assert server.get("/site.css").headers["access-control-allow-origin"] == "*"
    assert server.get("/sendfile").text.startswith("body")


def test_hidden_files_are_not_served(server, moonwire):
    assert server.get("/.env").status_code == 404
