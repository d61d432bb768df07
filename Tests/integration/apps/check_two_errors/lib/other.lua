return { "unterminated string }
