-- moonwire.json: round trips through HTTP bodies and checks made inside Lua.
local J = moonwire.json

local function decode_failure(text)
  local value, err = J.decode(text)
  return { value_is_nil = value == nil, err_type = type(err), err = tostring(err) }
end

local function encode_failure(value)
  local ok, err = pcall(J.encode, value)
  return { raised = not ok, err = tostring(err) }
end

local function checks()
  local out = {}
  out.encode_int = J.encode(3)
  out.encode_negative_int = J.encode(-17)
  out.encode_zero = J.encode(0)
  out.encode_float = J.encode(2.5)
  out.encode_negative_float = J.encode(-0.125)
  out.encode_max_int = J.encode(math.maxinteger)
  out.decode_int_type = math.type(J.decode("3"))
  out.decode_negative_int_type = math.type(J.decode("-42"))
  out.decode_float_type = math.type(J.decode("2.5"))
  out.decode_exponent_type = math.type(J.decode("1e3"))
  out.decode_exponent_value = J.decode("1e3") == 1000
  out.decode_big_int_exact = J.decode("9007199254740993") == 9007199254740993
  out.decode_big_int_type = math.type(J.decode("9007199254740993"))
  out.encode_empty_table = J.encode({})
  out.encode_array = J.encode({ 1, 2, 3 })
  out.encode_string_array = J.encode({ "a", "b" })
  out.encode_object = J.encode({ a = 1 })
  out.encode_mixed = J.encode({ 1, 2, x = 3 })
  out.encode_sparse = J.encode({ [1] = "a", [3] = "c" })
  out.encode_nested = J.encode({ outer = { inner = { 1, { deep = true } } } })
  out.encode_null = J.encode(J.null)
  out.encode_null_in_array = J.encode({ 1, J.null, 3 })
  out.encode_null_in_object = J.encode({ a = J.null })
  out.encode_true = J.encode(true)
  out.encode_false = J.encode(false)
  out.encode_string = J.encode('quote" backslash\\ slash/ newline\n tab\t cr\r ctrl\1 bell\7')
  out.encode_unicode = J.encode("é😀中")
  out.decode_null_is_sentinel = J.decode("null") == J.null
  out.decode_null_in_object_is_sentinel = J.decode('{"a":null}').a == J.null
  out.decode_null_in_array_keeps_length = #J.decode("[1,null,3]") == 3
  out.decode_null_in_array_is_sentinel = J.decode("[1,null,3]")[2] == J.null
  out.decode_true = J.decode("true") == true
  out.decode_false = J.decode("false") == false
  out.decode_array_length = #J.decode("[10,20,30,40]")
  out.decode_array_first = J.decode("[10,20,30,40]")[1]
  out.decode_nested = J.decode('{"a":{"b":[1,{"c":"deep"}]}}').a.b[2].c
  out.decode_unicode_escapes = J.decode('"\\u00e9\\ud83d\\ude00\\u4e2d"') == "é😀中"
  out.decode_escapes = J.decode('"q\\" b\\\\ s\\/ n\\n t\\t"') == 'q" b\\ s/ n\n t\t'
  out.decode_raw_utf8 = J.decode('"é😀"') == "é😀"
  out.decode_whitespace = J.decode(' \n\t{ "a" : [ 1 , 2 ] } \n').a[2] == 2
  out.decode_string_top_level = J.decode('"just a string"') == "just a string"
  out.decode_empty_object_is_table = type(J.decode("{}")) == "table"
  out.decode_errors = {
    unterminated_object = decode_failure("{oops"),
    empty = decode_failure(""),
    unterminated_array = decode_failure("[1,"),
    bad_literal = decode_failure("nul"),
    trailing_garbage = decode_failure('{"a":1} x'),
    trailing_comma = decode_failure("[1,]"),
    single_quotes = decode_failure("'single'"),
    unterminated_string = decode_failure('"abc'),
  }
  out.encode_errors = {
    ["function"] = encode_failure({ f = function() end }),
    cycle = (function()
      local t = {}
      t.self = t
      return encode_failure(t)
    end)(),
  }
  return out
end

function OnCommandGet(req, res)
  if req.path == "/checks" then
    res:json(checks())
  elseif req.path == "/roundtrip" then
    -- decode the body, encode it again: Python compares with what it sent
    local value, err = J.decode(req.body)
    if value == nil then
      res.status = 422
      res:send("decode error: " .. tostring(err))
      return
    end
    res:header("Content-Type", "application/json")
    res:send(J.encode(value))
  elseif req.path == "/decode-error" then
    local value, err = J.decode(req.body)
    res:json({ value_is_nil = value == nil, err = tostring(err), err_type = type(err) })
  else
    res.status = 404
  end
end
