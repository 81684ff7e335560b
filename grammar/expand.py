"""BuildKit's shell-word lexer: `$VAR`, `${VAR...}` forms, quotes, escapes and word splitting.

These are the rules BuildKit applies to the arguments of ENV, ARG, COPY, WORKDIR, FROM, ... (not
RUN, whose text goes to the shell). The builder calls `Expander.expand` at dispatch time, against
the ARG/ENV state of that moment; `Expander.used` tells the cache key which names a word reads.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from .errors import ExpandError
from .gotext import GO_SPACES

_SPECIAL_PARAMS = "@*#?-$!0"
_EOF = ""


class _Fail(Exception):
    """An expansion error inside the lexer, before the source word is added to the message."""


class _Words:
    """Collects the result split into words: unquoted expansions split on blanks, quoted ones not."""

    __slots__ = ("buf", "words", "in_word")

    def __init__(self) -> None:
        self.buf: list[str] = []
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch in GO_SPACES:
            if self.in_word and self.buf:
                self.words.append("".join(self.buf))
                self.buf = []
                self.in_word = False
        else:
            self.add_raw(ch)

    def add_raw(self, text: str) -> None:
        if text:  # an empty quoted string makes no word by itself
            self.buf.append(text)
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def result(self) -> list[str]:
        if self.buf:
            self.words.append("".join(self.buf))
            self.buf = []
        return self.words


class _Lexer:
    """One pass over one word (BuildKit's shellWord)."""

    def __init__(self, text: str, env: Mapping[str, str], escape: str, *, raw_quotes: bool = False,
                 raw_escapes: bool = False, skip_unset: bool = False) -> None:
        self.text = text
        self.pos = 0
        self.env = env
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_unset = skip_unset
        self.matches: set[str] = set()
        self.nonmatches: set[str] = set()

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else _EOF

    def next(self) -> str:
        if self.pos < len(self.text):
            self.pos += 1
            return self.text[self.pos - 1]
        return _EOF

    def lookup(self, name: str) -> tuple[str, bool]:
        if name in self.env:
            self.matches.add(name)
            return self.env[name], True
        self.nonmatches.add(name)
        return "", False

    def stop_on(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            return self._stop_on(stop)
        finally:
            self.raw_escapes = saved

    def _stop_on(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        while (ch := self.peek()) != _EOF:
            if stop and ch == stop:
                self.next()
                return "".join(result), words.result()
            if ch == "$":
                value = self.dollar()
                result.append(value)
                words.add_string(value)
            elif ch == "'" or ch == '"' or ch == "<":
                value = self.single_quote() if ch == "'" else self.double_quote() if ch == '"' else self.maybe_heredoc()
                result.append(value)
                words.add_raw(value)
            else:
                ch = self.next()
                if ch == self.escape:
                    if self.raw_escapes:
                        words.add_raw(ch)
                        result.append(ch)
                    ch = self.next()
                    if ch == _EOF:
                        break
                    words.add_raw(ch)
                else:
                    words.add_char(ch)
                result.append(ch)
        if stop:
            raise _Fail(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.result()

    def _open_quote(self) -> list[str]:
        opening = self.next()
        return [opening] if self.raw_quotes else []

    def single_quote(self) -> str:
        out = self._open_quote()
        while True:
            ch = self.next()
            if ch == _EOF:
                raise _Fail("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                if self.raw_quotes:
                    out.append(ch)
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        out = self._open_quote()
        while True:
            ch = self.peek()
            if ch == _EOF:
                raise _Fail("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.next()
                if self.raw_quotes:
                    out.append(ch)
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.escape:
                if self.raw_escapes:
                    out.append(ch)
                following = self.peek()
                if following == _EOF:
                    continue
                if following in ('"', "$", self.escape):
                    ch = self.next()
            out.append(ch)

    def maybe_heredoc(self) -> str:
        # `<<` keeps the blanks after it, so `<< EOF` stays one word (BuildKit does this for heredocs)
        self.next()
        if self.peek() != "<":
            return "<"
        self.next()
        start = self.pos
        while self.peek() in ("\t", "\r", " ") and self.peek() != _EOF:
            self.next()
        return "<<" + self.text[start:self.pos]

    def name(self) -> str:
        out: list[str] = []
        while (ch := self.peek()) != _EOF:
            if not out and ch.isdecimal():
                while self.peek() != _EOF and self.peek().isdecimal():
                    out.append(self.next())
                return "".join(out)
            if not out and ch in _SPECIAL_PARAMS:
                return self.next()
            if not (ch.isalpha() or ch.isdecimal() or ch == "_"):
                break
            out.append(self.next())
        return "".join(out)

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            value, found = self.lookup(name)
            return "$" + name if not found and self.skip_unset else value
        self.next()
        if self.peek() == _EOF:
            raise _Fail("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise _Fail("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        modifier = ch
        if ch == "}":
            value, found = self.lookup(name)
            return "${%s}" % name if not found and self.skip_unset else value
        if ch == "/":
            return self.substitute(name)
        null_is_unset = False
        if ch == ":":
            null_is_unset = True
            ch = self.next()
            modifier += ch
        if ch == _EOF or ch not in "+-?#%":
            raise _Fail(f"unsupported modifier ({modifier}) in substitution")
        trims = ch in "#%"
        if null_is_unset and trims:
            raise _Fail(f"unsupported modifier ({modifier}) in substitution")
        word = self._operand("}", trims, "syntax error: missing '}'")
        value, found = self.lookup(name)
        if self.skip_unset and not found:
            return "${%s%s%s}" % (name, modifier, word)
        empty = not found or (null_is_unset and value == "")
        if ch == "-":
            return word if empty else value
        if ch == "+":
            return "" if empty else word
        if ch == "?":
            if not found:
                raise _Fail(f"{name}: {word or 'is not allowed to be unset'}")
            if null_is_unset and value == "":
                raise _Fail(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        greedy = word.startswith(ch)
        if greedy:
            word = word[1:]
        return _trim_suffix(word, value, greedy) if ch == "%" else _trim_prefix(word, value, greedy)

    def _operand(self, stop: str, raw_escapes: bool, missing: str) -> str:
        try:
            return self.stop_on(stop, raw_escapes)[0]
        except _Fail:
            if self.peek() == _EOF:
                raise _Fail(missing) from None
            raise

    def substitute(self, name: str) -> str:
        replace_all = self.peek() == "/"
        if replace_all:
            self.next()
        pattern = self._operand("/", True, "syntax error: missing '/' in ${}")
        replacement = self._operand("}", True, "syntax error: missing '}'")
        value, found = self.lookup(name)
        if self.skip_unset and not found:
            return "${%s/%s/%s}" % (name, pattern, replacement)
        regex = _pattern_regex(pattern, greedy=True, anchored=False)
        if replace_all:
            return regex.sub(lambda _m: replacement, value)
        m = regex.search(value)
        return value[:m.start()] + replacement + value[m.end():] if m else value


_REGEX_SPECIALS = set("[]{}.+()|^$")


def _pattern_regex(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """A shell glob (`*`, `?`, `\\` escapes) as a regex, as BuildKit converts it."""
    out = ["^"] if anchored else []
    star = ".*" if greedy else ".*?"
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(star)
        elif ch == "?":
            out.append(".")
        elif ch == "\\":
            following = pattern[i] if i < n else _EOF
            if following in ("}", "/") and following:
                continue
            if following not in ("*", "?", "\\") or not following:
                raise _Fail(f"invalid pattern ({pattern}) in substitution: invalid escape '\\{following}'")
            out.append("\\" + following)
            i += 1
        elif ch in _REGEX_SPECIALS:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return re.compile("".join(out))


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    m = _pattern_regex(pattern, greedy=greedy, anchored=True).search(value)
    return value[m.end():] if m else value


def _reverse_pattern(pattern: str) -> str:
    # reverse, but keep each `\x` escape pair in order
    pieces: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i != len(pattern) - 1:
            pieces.append(pattern[i:i + 2])
            i += 2
        else:
            pieces.append(pattern[i])
            i += 1
    return "".join(reversed(pieces))


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    # a regex finds the leftmost match only: reverse both to trim from the right
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]


class _Everything(dict):
    """An environment in which every name is set (to a non-empty value): for `used()`."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        return "x"


class Expander:
    """Expands words as BuildKit's shell lexer does. `escape` is the Dockerfile's escape token."""

    def __init__(self, escape: str = "\\") -> None:
        self.escape = escape

    def _run(self, word: str, env: Mapping[str, str], **modes: bool) -> _Lexer:
        lexer = _Lexer(word, env, self.escape, **modes)
        try:
            lexer.result, lexer.words = lexer.stop_on(_EOF, lexer.raw_escapes)
        except _Fail as err:
            raise ExpandError(f"failed to process {word!r}: {err}",
                              hint="quote or escape the `$`, or define the variable") from None
        return lexer

    def expand(self, word: str, env: Mapping[str, str]) -> str:
        """One word: quotes removed, escapes applied, variables expanded (no splitting)."""
        return self._run(word, env).result

    def expand_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        """Expanded and split into words: unquoted expansions split on blanks, quoted ones not."""
        return self._run(word, env).words

    def expand_with_matches(self, word: str, env: Mapping[str, str]) -> tuple[str, set[str], set[str]]:
        """The expansion, the names it found in `env` and the names it looked for in vain."""
        lexer = self._run(word, env)
        return lexer.result, lexer.matches, lexer.nonmatches

    def used(self, word: str) -> set[str]:
        """The variable names `word` refers to (what its expansion depends on)."""
        lexer = _Lexer(word, _Everything(), self.escape)
        try:
            lexer.stop_on(_EOF, False)
        except _Fail:
            pass
        return {n for n in lexer.matches | lexer.nonmatches if n and (n[0].isalpha() or n[0] == "_")}

    def raw_words(self, text: str) -> list[str]:
        """Words with quotes and escapes kept and unset variables left as written (heredoc markers)."""
        try:
            return self._run(text, {}, raw_quotes=True, raw_escapes=True, skip_unset=True).words
        except ExpandError:
            return []

    def words_unset_kept(self, text: str, *, raw_quotes: bool) -> list[str]:
        return self._run(text, {}, raw_quotes=raw_quotes, skip_unset=True).words


def env_from_list(entries: list[str]) -> dict[str, str]:
    """A `KEY=VALUE` list (as in an image config) as a mapping: a bare `KEY` is empty, the last wins."""
    env: dict[str, str] = {}
    for entry in entries:
        key, _, value = entry.partition("=")
        env[key] = value
    return env
