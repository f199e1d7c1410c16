//! Tokens of the text form.

use crate::{IrError, Result};

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Colon,
    Eq,
    Arrow,
    Eof,
}

pub struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    line: usize,
    peeked: Option<Tok>,
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str) -> Lexer<'a> {
        Lexer {
            src: src.as_bytes(),
            pos: 0,
            line: 1,
            peeked: None,
        }
    }
    pub fn line(&self) -> usize {
        self.line
    }
    pub fn peek(&mut self) -> Result<Tok> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lex()?);
        }
        Ok(self.peeked.clone().unwrap_or(Tok::Eof))
    }
    pub fn next(&mut self) -> Result<Tok> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lex(),
        }
    }
    fn err(&self, msg: String) -> IrError {
        IrError::Parse {
            line: self.line,
            msg,
        }
    }

    fn lex(&mut self) -> Result<Tok> {
        while let Some(&c) = self.src.get(self.pos) {
            if c == b'\n' {
                self.line += 1;
            }
            if c == b'#' {
                while self.src.get(self.pos).is_some_and(|&c| c != b'\n') {
                    self.pos += 1;
                }
                continue;
            }
            if !c.is_ascii_whitespace() {
                break;
            }
            self.pos += 1;
        }
        let Some(&c) = self.src.get(self.pos) else {
            return Ok(Tok::Eof);
        };
        let single = match c {
            b'{' => Some(Tok::LBrace),
            b'}' => Some(Tok::RBrace),
            b'(' => Some(Tok::LParen),
            b')' => Some(Tok::RParen),
            b'[' => Some(Tok::LBracket),
            b']' => Some(Tok::RBracket),
            b',' => Some(Tok::Comma),
            b':' => Some(Tok::Colon),
            b'=' => Some(Tok::Eq),
            _ => None,
        };
        if let Some(t) = single {
            self.pos += 1;
            return Ok(t);
        }
        if c == b'-' && self.src.get(self.pos + 1) == Some(&b'>') {
            self.pos += 2;
            return Ok(Tok::Arrow);
        }
        if c == b'"' {
            return self.string();
        }
        let start = self.pos;
        let word = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-');
        while self.src.get(self.pos).is_some_and(|&b| word(b)) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.err(format!("unexpected character `{}`", c as char)));
        }
        let s = String::from_utf8_lossy(&self.src[start..self.pos]).into_owned();
        let numeric = c.is_ascii_digit() || ((c == b'-' || c == b'+') && self.pos > start + 1);
        Ok(if numeric { Tok::Num(s) } else { Tok::Ident(s) })
    }

    /// A double-quoted string with Rust `{:?}` escapes.
    fn string(&mut self) -> Result<Tok> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = std::str::from_utf8(&self.src[self.pos..])
                .map_err(|_| self.err("invalid UTF-8".into()))?;
            let Some(ch) = rest.chars().next() else {
                return Err(self.err("unterminated string".into()));
            };
            self.pos += ch.len_utf8();
            match ch {
                '"' => return Ok(Tok::Str(out)),
                '\\' => {
                    let e = self
                        .src
                        .get(self.pos)
                        .copied()
                        .ok_or_else(|| self.err("unterminated string".into()))?;
                    self.pos += 1;
                    match e {
                        b'n' => out.push('\n'),
                        b't' => out.push('\t'),
                        b'r' => out.push('\r'),
                        b'0' => out.push('\0'),
                        b'\\' => out.push('\\'),
                        b'"' => out.push('"'),
                        b'\'' => out.push('\''),
                        b'u' => out.push(self.unicode()?),
                        e => return Err(self.err(format!("unknown escape `\\{}`", e as char))),
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn unicode(&mut self) -> Result<char> {
        let rest = &self.src[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == b'}')
            .ok_or_else(|| self.err("bad \\u escape".into()))?;
        let hex =
            std::str::from_utf8(&rest[1..end]).map_err(|_| self.err("bad \\u escape".into()))?;
        self.pos += end + 1;
        u32::from_str_radix(hex, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| self.err("bad \\u escape".into()))
    }
}
