-- With isolation_b_test.lua: each file has a server of its own, so each sees the first hit.
function test_first_hit(t)
  t.eq(t.get("/hits").json.hits, 1)
end
