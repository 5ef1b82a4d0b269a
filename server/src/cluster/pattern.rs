//! Moleculer's event-name patterns, compiled once (when INFO arrives) and matched in linear
//! time.
//!
//! `*` is any text within a segment (no `.`), `**` any text, `?` any one character; anything
//! else stands for itself. A pattern is read into tokens and matched by following every
//! position of the pattern at once (a Thompson-style simulation, as the `regex` crate does):
//! the work is at most (name length + 1) x (pattern length + 1) steps whatever the input, where
//! a backtracking matcher takes exponential time on patterns like `a*a*a*a*a*b`.

/// One piece of a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// This character.
    Char(char),
    /// `?`: any one character.
    One,
    /// `*`: any text without a dot.
    Segment,
    /// `**`: any text.
    Any,
}

impl Token {
    /// Whether the token may match no text (so a position before it also stands after it).
    fn may_be_empty(self) -> bool {
        matches!(self, Self::Segment | Self::Any)
    }
}

/// A compiled event pattern with at least one wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventPattern {
    tokens: Box<[Token]>,
}

impl EventPattern {
    /// Compiles `pattern`; `None` when it has no wildcard (compare it as plain text).
    pub(crate) fn compile(pattern: &str) -> Option<Self> {
        if !pattern.contains(['*', '?']) {
            return None;
        }
        let mut tokens: Vec<Token> = Vec::with_capacity(pattern.len());
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            let token = match c {
                '*' if chars.next_if_eq(&'*').is_some() => Token::Any,
                '*' => Token::Segment,
                '?' => Token::One,
                c => Token::Char(c),
            };
            // Runs of stars are one: `***` and `*` `**` mean any text, as in moleculer.
            match (tokens.last_mut(), token) {
                (Some(last), Token::Any | Token::Segment) if last.may_be_empty() => {
                    if token == Token::Any {
                        *last = Token::Any;
                    }
                }
                _ => tokens.push(token),
            }
        }
        Some(Self {
            tokens: tokens.into_boxed_slice(),
        })
    }

    /// Whether `name` matches; linear in `name` for a given pattern.
    pub(crate) fn matches(&self, name: &str) -> bool {
        let n = self.tokens.len();
        // at[i]: the first i tokens can match the name read so far.
        let mut at = vec![false; n + 1];
        let mut next = vec![false; n + 1];
        at[0] = true;
        self.skip_empty(&mut at);
        for c in name.chars() {
            next.fill(false);
            let mut alive = false;
            for (i, token) in self.tokens.iter().enumerate() {
                if !at[i] {
                    continue;
                }
                match *token {
                    Token::Char(t) if t == c => next[i + 1] = true,
                    Token::One => next[i + 1] = true,
                    Token::Segment if c != '.' => next[i] = true,
                    Token::Any => next[i] = true,
                    _ => continue,
                }
                alive = true;
            }
            if !alive {
                return false;
            }
            self.skip_empty(&mut next);
            std::mem::swap(&mut at, &mut next);
        }
        at[n]
    }

    /// Adds the positions reached by letting stars match nothing.
    fn skip_empty(&self, at: &mut [bool]) {
        for (i, token) in self.tokens.iter().enumerate() {
            if at[i] && token.may_be_empty() {
                at[i + 1] = true;
            }
        }
    }
}

/// Whether `name` matches `pattern` (compiled on the spot; for tests and one-off checks).
#[cfg(test)]
pub(crate) fn event_matches(name: &str, pattern: &str) -> bool {
    EventPattern::compile(pattern).map_or(name == pattern, |p| p.matches(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moleculer_wildcards() {
        assert!(event_matches("websocket.send", "websocket.send"));
        assert!(event_matches("websocket.send", "websocket.*"));
        assert!(!event_matches("a.b.c", "a.*"));
        assert!(event_matches("a.b.c", "a.**"));
        assert!(event_matches("a.bc", "a.?c"));
        assert!(!event_matches("websocket.send", "websocket.sen"));
    }

    #[test]
    fn stars_match_empty_text_and_segments_stop_at_dots() {
        assert!(event_matches("user.", "user.*"));
        assert!(event_matches("user", "user**"));
        assert!(event_matches("anything.at.all", "**"));
        assert!(event_matches("", "**"));
        assert!(event_matches("plain", "*"));
        assert!(!event_matches("not.plain", "*"));
        assert!(event_matches("a.x.b", "a.*.b"));
        assert!(!event_matches("a.x.y.b", "a.*.b"));
        assert!(event_matches("a.x.y.b", "a.**.b"));
        assert!(event_matches("a.x.y.b", "a.***.b"), "*** is **");
        assert!(event_matches("a.x.y", "*.**"));
        assert!(
            event_matches("a.b", "a?b"),
            "? matches a dot, as in moleculer"
        );
        assert!(!event_matches("ab", "a?b"));
        assert!(
            event_matches("é.ü", "?.?"),
            "? is one character, not one byte"
        );
        assert!(!event_matches("x", "?x"));
    }

    #[test]
    fn star_runs_are_one_token() {
        let p = EventPattern::compile("a***b*").unwrap();
        assert_eq!(
            &*p.tokens,
            [
                Token::Char('a'),
                Token::Any,
                Token::Char('b'),
                Token::Segment
            ]
        );
        assert_eq!(EventPattern::compile("exact.name"), None);
    }

    #[test]
    fn pathological_patterns_take_linear_time() {
        // A backtracking matcher explores ~C(4000, 15) ways on these.
        let long = "a".repeat(4000);
        assert!(!event_matches(&long, "a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b"));
        assert!(event_matches(
            &format!("{long}b"),
            "a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b"
        ));
        let dotted = format!("{}c", "a.".repeat(2000));
        assert!(!event_matches(
            &dotted,
            "**.**.**.**.**.**.**.**.**.**.**.**.b"
        ));
        assert!(!event_matches(&long, "?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*b"));
    }
}
