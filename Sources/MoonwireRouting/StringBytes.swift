// Borrowing a String's UTF-8 bytes in code that uses typed throws: `String.withUTF8` is
// `rethrows`, which would widen `RegexError` to `any Error`.

/// Calls `body` with the UTF-8 bytes of `string`, without copying native strings.
func withUTF8Bytes<Result>(
    of string: String, _ body: (UnsafeRawBufferPointer) throws(RegexError) -> Result
) throws(RegexError) -> Result {
    var string = string
    let outcome = string.withUTF8 { bytes in
        Swift.Result { () throws(RegexError) in try body(UnsafeRawBufferPointer(bytes)) }
    }
    return try outcome.get()
}
