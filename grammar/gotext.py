"""Go's text rules that BuildKit's parser leans on, so that our output matches it byte for byte.

BuildKit trims with Go's `unicode.IsSpace` (not Python's `str.isspace`, which also counts
\\x1c-\\x1f) and prints arguments with `strconv.Quote` (not `repr` or `json.dumps`).
"""
from __future__ import annotations

import re
import unicodedata

# Go's unicode.IsSpace: the White_Space property minus nothing, plus nothing.
GO_SPACES = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
# BuildKit's reWhitespace: the ASCII blanks that separate arguments.
ASCII_BLANKS_RE = re.compile(r"[\t\v\f\r ]+")

_PLAIN_ASCII = re.compile(r'[ !#-\[\]-~]*\Z')  # printable ASCII without " and \
_SHORT_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
                  '"': '\\"', "\\": "\\\\"}


def go_strip(text: str) -> str:
    """strings.TrimSpace."""
    return text.strip(GO_SPACES)


def go_lstrip(text: str) -> str:
    return text.lstrip(GO_SPACES)


def is_go_space(ch: str) -> bool:
    return ch in GO_SPACES


def _is_printable(ch: str) -> bool:
    # Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space.
    return ch == " " or unicodedata.category(ch)[0] in "LMNPS"


def go_quote(text: str) -> str:
    """strconv.Quote. Lone surrogates from `surrogateescape` decoding stand for invalid bytes."""
    if _PLAIN_ASCII.match(text):
        return '"' + text + '"'
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xDC80 <= code <= 0xDCFF:  # an undecodable byte carried by surrogateescape
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF:  # not a valid rune: Go sees U+FFFD
            out.append("\ufffd")
        elif _is_printable(ch):
            out.append(ch)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)
